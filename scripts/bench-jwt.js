// scripts/bench-jwt.js -- the njs side of make bench (c5): the same RS256
// check as the edge module, written the way njs users write it (nginx's
// js module behind auth_request, WebCrypto for the signature).
// scripts/bench renders a copy with the public key (SPKI DER, base64),
// the issuer and the audience in place of the @...@ marks.  Per request:
// parse, import the key (njs 0.7 keeps no object between requests),
// verify, check exp, iss and aud.  204 or 401.

const SPKI = '@SPKI@';
const ISS = '@ISS@';
const AUD = '@AUD@';

async function verify(r) {
    const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/
              .exec(r.headersIn.Authorization || '');
    if (!m) {
        r.return(401);
        return;
    }

    try {
        const h = JSON.parse(Buffer.from(m[1], 'base64url').toString());
        if (h.alg !== 'RS256') {
            r.return(401);
            return;
        }

        const key = await crypto.subtle.importKey('spki',
            Buffer.from(SPKI, 'base64'),
            { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false,
            ['verify']);
        const ok = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key,
            Buffer.from(m[3], 'base64url'), m[1] + '.' + m[2]);
        const p = JSON.parse(Buffer.from(m[2], 'base64url').toString());

        r.return(ok && p.exp > Date.now() / 1000 && p.iss === ISS
                 && p.aud === AUD ? 204 : 401);

    } catch (e) {
        r.return(401);
    }
}

export default { verify };
