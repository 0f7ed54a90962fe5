"""Signed models: signing a model file with its companions, and verifying it before anything of it is read.

The package's public face. files.py: the signature format and what it covers (the backend table's
companion files); keys.py: keys and model-signing (the `signing` extra); sign.py: signing, also in
the step that puts an export in place; verify.py: verification on open, which
runtimes/registry.py's open_runtime runs first. Never imports torch.
"""

from alexnet_export.runtimes.signing.files import (
    SIGNATURE_SUFFIX,
    SignatureCheck,
    check_external_data,
    links,
    model_files,
    models_owning,
    signature_path,
)
from alexnet_export.runtimes.signing.keys import SignatureError, SigningKey, SigningUnavailable, signer
from alexnet_export.runtimes.signing.sign import sign_model, signature_first, signed_outputs, signs_outputs
from alexnet_export.runtimes.signing.verify import (
    TRUSTED_KEY_ENV,
    TreeCheck,
    check_before_open,
    trusted_key_from,
    verify_model,
    verify_tree,
)

__all__ = ["SIGNATURE_SUFFIX", "TRUSTED_KEY_ENV", "SignatureCheck", "SignatureError", "SigningKey", "SigningUnavailable",
           "TreeCheck", "check_before_open", "check_external_data", "links", "model_files", "models_owning",
           "sign_model", "signature_first", "signature_path", "signed_outputs", "signer", "signs_outputs",
           "trusted_key_from", "verify_model", "verify_tree"]
