/** Demo tokens for the gateway's `shop` JWT provider (HS256, shared secret). */
import { SignJWT } from 'jose';

export const DEMO_ISSUER = 'trellis-shop';
/** Demo only. A real deployment injects the secret (`${SHOP_JWT_SECRET}` in a gateway file). */
export const DEMO_SECRET =
  process.env.SHOP_JWT_SECRET ?? 'trellis-shop-demo-secret-change-me-please';

export async function demoToken(customer = 'alice', ttlSeconds = 3_600): Promise<string> {
  return new SignJWT({ scope: 'orders:write' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(customer)
    .setIssuer(DEMO_ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(new TextEncoder().encode(DEMO_SECRET));
}
