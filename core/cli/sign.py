"""`alexnet-export sign` and `alexnet-export verify-signature`: thin clients of runtimes/signing/sign.py."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import say


@click.command("sign")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", "sign_key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="PEM elliptic-curve private key (P-256, P-384 or P-521), unencrypted, e.g. from "
                   "`openssl ecparam -name prime256v1 -genkey -noout -out private.pem`.")
@click.option("--certificate", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Sign with a certificate: the PEM certificate of --key's public key, carried in the signature.")
@click.option("--chain", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="With --certificate (needed): PEM certificates from its issuing CA up to the root that verifiers "
                   "trust (repeatable).")
def sign_command(models, sign_key, certificate, chain):
    """Sign each MODEL: write MODEL.sig beside it, covering the file and every companion file it
    has (ONNX external data FILE.data, an IR's .bin, an engine's sidecar FILE.json).

    The signature is in the OpenSSF model-signing format, so its own CLI verifies it too
    (`model_signing verify key FOLDER --signature MODEL.sig --public_key public.pem
    --ignore_unsigned_files`). A model opened with --trusted-key (or $ALEXNET_EXPORT_TRUSTED_KEY)
    must carry a signature that verifies, or it is refused before anything of it is read.
    Export commands sign as they write with --sign-key.

    \b
    Examples:
      openssl ecparam -name prime256v1 -genkey -noout -out private.pem
      openssl ec -in private.pem -pubout -out public.pem
      alexnet-export sign alexnet.onnx alexnet.int8-cpu.onnx alexnet.engine --key private.pem
      alexnet-export sign alexnet.xml --key signer.pem --certificate signer.crt --chain ca.crt
    """
    from alexnet_export.runtimes.signing import SigningKey, sign_model

    if bool(chain) != (certificate is not None):
        raise click.UsageError("--certificate and --chain go together: the certificate of --key's public key, and"
                               " at least the certificate of the CA that issued it")
    signing_key = SigningKey(sign_key, certificate, tuple(chain))
    for model in models:
        result = sign_model(model, signing_key)
        click.echo(f"signed {_covered(result)}: {result.signature} ({result.seconds:.2f}s)")


@click.command("verify-signature")
@click.argument("target", metavar="REPO_OR_FILE", type=click.Path(exists=True, path_type=Path))
@click.option("--trusted-key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="PEM public key, or the PEM CA certificate that certificate-signed models chain to.")
def verify_signature_command(target, trusted_key):
    """Check the signature of a model file, or of every model under a folder (a Triton model
    repository, before a server starts from it), against --trusted-key: each model must be
    signed, unaltered, with exactly the companion files it was signed with. Prints one line per
    model; exit 1 if any is refused.

    \b
    Examples:
      alexnet-export verify-signature alexnet.onnx --trusted-key public.pem
      alexnet-export verify-signature models/ --trusted-key public.pem && tritonserver --model-repository models/
    """
    from alexnet_export.runtimes.signing import verify_tree

    result = verify_tree(target, trusted_key)
    for check in result.verified:
        click.echo(f"verified {_covered(check)} ({check.seconds:.2f}s)")
    if result.refused and not target.is_dir():
        raise click.ClickException(result.refused[0])
    for line in result.refused:
        say(line)
    if result.refused:
        total = len(result.verified) + len(result.refused)
        raise click.ClickException(f"{len(result.refused)} of {total} models under {target} refused")


def _covered(check) -> str:
    """"alexnet.xml and alexnet.bin" from a SignatureCheck, with the model's folder."""
    names = [str(check.model), *check.files[1:]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

