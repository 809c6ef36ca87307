/**
 * Test certificates made with the `openssl` command line: a private CA, leaves signed by it, and a
 * leaf whose validity period lies in the past (`openssl ca` with explicit dates: `x509 -days`
 * cannot make one).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** `ca.pem`/`ca.key` in `dir`. */
export function makeCa(dir: string): void {
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tpx test CA');
}

/**
 * `<name>.pem`/`<name>.key` for 127.0.0.1 and localhost (or the subjectAltName `names`), signed by
 * the CA of `dir` (makeCa), valid from now for two days, or (`expired`) during January 2020.
 */
export function makeLeaf(dir: string, name: string, options: { expired?: boolean; names?: string } = {}): { cert: string; key: string } {
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${options.names ?? 'IP:127.0.0.1,DNS:localhost'}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, 'req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  if (!options.expired) {
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext);
  } else {
    const db = path.join(dir, `${name}-db`);
    mkdirSync(db, { recursive: true });
    writeFileSync(path.join(db, 'index.txt'), '');
    writeFileSync(path.join(db, 'serial'), '01\n');
    writeFileSync(
      path.join(dir, `${name}-ca.cnf`),
      `[ca]\ndefault_ca=tpx\n[tpx]\ndatabase=${db}/index.txt\nnew_certs_dir=${db}\nserial=${db}/serial\ndefault_md=sha256\npolicy=any\ncopy_extensions=none\n[any]\ncommonName=supplied\n`,
    );
    openssl(dir, 'ca', '-batch', '-config', `${name}-ca.cnf`, '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${name}.csr`, '-out', `${name}.pem`, '-notext',
      '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', ext);
  }
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}
