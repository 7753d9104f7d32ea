import { defineConfig } from 'tsup';
import { trellisTsup } from '../../scripts/tsup.mjs';

export default defineConfig(trellisTsup(import.meta.url));
