/** Prints a demo JWT for the gateway: `npm run token -w @trellis/example-shop -- bob`. */
import { demoToken } from './token.js';

console.log(await demoToken(process.argv[2] ?? 'alice'));
