export { type RequestLogFields, requestContextMixin } from './requestContextMixin.js';
