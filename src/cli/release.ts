/** `plexus release keygen|pubkey|sign`: the release key that signs SHA256SUMS (docs/install.md). */
import type { Command } from 'commander';
import { CliError } from './errors.ts';
import { examples } from './examples.ts';

/** Registers the release verbs. */
export function registerRelease(program: Command): void {
  const release = program
    .command('release')
    .description('the release signing key: make it, print its public half, sign SHA256SUMS');
  release
    .command('keygen <file>')
    .description('make a new Ed25519 release key (mode 0600; keep it off the servers)')
    .addHelpText('after', examples('plexus release keygen release.key'))
    .action(async (file: string) => {
      const { generateSigner, writeKeyFile } = await import('../crypto/ed25519.ts');
      const { signer, seed } = generateSigner();
      try {
        writeKeyFile(file, seed, signer);
      } catch (err) {
        throw new CliError(`cannot write ${file}: ${(err as Error).message} (it must not exist yet)`);
      }
      process.stdout.write(`release key ${signer.kid} written to ${file}\n`);
    });
  release
    .command('pubkey')
    .description("print the key's public half (release.pub, what installs trust)")
    .requiredOption('--release-key <file>', 'the release key')
    .addHelpText('after', examples('plexus release pubkey --release-key release.key > release.pub'))
    .action(async (opts: { releaseKey: string }) => {
      const [{ readKeyFile }, { releasePublicKey }] = await Promise.all([
        import('../crypto/ed25519.ts'),
        import('../install/release-signature.ts'),
      ]);
      process.stdout.write(`${JSON.stringify(releasePublicKey(readKeyFile(opts.releaseKey)))}\n`);
    });
  release
    .command('sign <sums>')
    .description('sign a SHA256SUMS file: writes SUMS.sig beside it')
    .requiredOption('--release-key <file>', 'the release key')
    .addHelpText('after', examples('plexus release sign --release-key release.key dist/SHA256SUMS'))
    .action(async (sums: string, opts: { releaseKey: string }) => {
      const [{ readFileSync, writeFileSync }, { readKeyFile }, { signSums }, { MAX_SUMS_BYTES }] =
        await Promise.all([
          import('node:fs'),
          import('../crypto/ed25519.ts'),
          import('../install/release-signature.ts'),
          import('../install/constants.ts'),
        ]);
      const bytes = readFileSync(sums);
      if (bytes.length > MAX_SUMS_BYTES) throw new CliError(`${sums} is larger than ${MAX_SUMS_BYTES} bytes`);
      const sig = signSums(bytes, readKeyFile(opts.releaseKey));
      writeFileSync(`${sums}.sig`, `${JSON.stringify(sig)}\n`, { mode: 0o644 });
      process.stdout.write(`signed ${sums} with release key ${sig.kid}\n`);
    });
}
