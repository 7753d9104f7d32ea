export {
  createObservabilityHandler,
  HEALTH_CONTENT_TYPE,
  type ObservabilityHandler,
  type ObservabilityHandlerOptions,
  sendHealthReport,
} from './createObservabilityHandler.js';
export {
  createRequestObserver,
  type ObservedRequest,
  REQUEST_ID_HEADER,
  type RequestObserver,
  type RequestObserverOptions,
} from './createRequestObserver.js';
export * from './shed/index.js';
