/**
 * nftables inside a booted test container (the cached rootfs is minbase, without it): the
 * packages are downloaded once on the host (same Debian release) into a cache outside the
 * repository, bound into the box and installed with dpkg into its volatile overlay. The box's
 * agent then has `nft` for the kernel redirect of apps' declared ports (issue 18).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Container, ROOTFS } from './nspawn.ts';

/** nftables and the libraries the minbase rootfs lacks. */
const PACKAGES = [
  'nftables',
  'libnftables1',
  'libedit2',
  'libjansson4',
  'libmnl0',
  'libnftnl11',
  'libxtables12',
  'libbsd0',
];
/** Where the .deb files are kept between runs. */
export const NFT_DEBS = join(dirname(ROOTFS), 'debs-nftables');

/** Downloads the packages once; returns why it could not, or undefined. */
export function fetchNftDebs(): string | undefined {
  if (
    existsSync(NFT_DEBS) &&
    readdirSync(NFT_DEBS).filter((f) => f.endsWith('.deb')).length >= PACKAGES.length
  )
    return undefined;
  mkdirSync(NFT_DEBS, { recursive: true });
  const r = spawnSync('sh', ['-c', `cd '${NFT_DEBS}' && apt-get download -q ${PACKAGES.join(' ')}`], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return r.status === 0
    ? undefined
    : `cannot download nftables for the container: ${r.stderr.split('\n')[0]}`;
}

/** Installs the downloaded packages in `box` (bound at `boxDir`); throws with dpkg's output when it fails. */
export async function installNftInBox(box: Container, boxDir: string): Promise<void> {
  const r = await box.exec(['sh', '-c', `dpkg -i ${boxDir}/*.deb && nft --version`], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`cannot install nftables in the container: ${r.stderr.slice(-500)}`);
}
