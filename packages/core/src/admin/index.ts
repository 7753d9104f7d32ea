export {
  type AdminHandler,
  type AdminOptions,
  adminOptionsSchema,
  createAdminHandler,
} from './createAdminHandler.js';
export {
  type AdminServer,
  type AdminServerOptions,
  createAdminServer,
} from './createAdminServer.js';
