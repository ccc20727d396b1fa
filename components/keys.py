"""The cluster's secrets made here: its SSH key (from config, from a file, or generated once per
cluster) and its Ray auth token (generated once per cluster)."""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi_command import local

from styx.components.backends.base import ClusterKey
from styx.model.config import ClusterConfig


def _split(stdout: str) -> tuple[str, str]:
    marker = "-----END OPENSSH PRIVATE KEY-----"
    priv, _, pub = stdout.partition(marker)
    return priv + marker + "\n", pub.strip()


def cluster_key(cfg: ClusterConfig, generator: str, parent: pulumi.Resource) -> ClusterKey | None:
    if generator == "none":
        return None
    ssh = cfg.ssh
    if ssh.private_key or ssh.private_key_file:
        text = ssh.private_key or Path(ssh.private_key_file).expanduser().read_text()  # type: ignore[arg-type]
        pub = _public_from_private(text)
        return ClusterKey(pulumi.Output.secret(text), pulumi.Output.from_input(pub), generated=False)
    name = f"{cfg.name}-ssh-key"
    if generator == "tls":
        import pulumi_tls as tls

        k = tls.PrivateKey(name, algorithm="ED25519", opts=pulumi.ResourceOptions(parent=parent))
        return ClusterKey(pulumi.Output.secret(k.private_key_openssh), k.public_key_openssh, generated=True)
    # ssh-keygen through a local command: no extra provider plugin; the key lives only in the
    # (encrypted) stack state as a secret output.
    gen = local.Command(
        name,
        create=(
            'd="$(mktemp -d)" && ssh-keygen -q -t ed25519 -N "" -C styx-' + cfg.name + ' -f "$d/k" '
            '&& cat "$d/k" "$d/k.pub" && rm -rf "$d"'
        ),
        logging=local.Logging.NONE,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["stdout"]),
    )
    parts = gen.stdout.apply(_split)
    return ClusterKey(
        private_key=pulumi.Output.secret(parts[0]),
        public_key=pulumi.Output.unsecret(parts[1]),
        generated=True,
    )


def ray_token(cfg: ClusterConfig, parent: pulumi.Resource) -> pulumi.Output[str] | None:
    """The cluster's Ray auth token (setup.ray.auth: token): 32 random bytes as hex, made once by a local
    command (no extra provider plugin), kept only as a secret output in the encrypted state; the same
    on every later `up` until the cluster is destroyed."""
    ray = cfg.setup.ray
    if not ray.enabled or ray.auth != "token":
        return None
    gen = local.Command(
        f"{cfg.name}-ray-token",
        create="od -An -N32 -tx1 /dev/urandom | tr -d ' \\n'",
        logging=local.Logging.NONE,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["stdout"]),
    )
    return pulumi.Output.secret(gen.stdout.apply(lambda s: s.strip()))


def _public_from_private(text: str) -> str:
    """The public key line for a given private key (ssh-keygen -y), computed locally."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", delete=True) as f:
        f.write(text if text.endswith("\n") else text + "\n")
        f.flush()
        Path(f.name).chmod(0o600)
        out = subprocess.run(["ssh-keygen", "-y", "-f", f.name], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ValueError("styx:cluster.ssh.private_key: not a valid unencrypted private key (ssh-keygen -y failed)")
    return out.stdout.strip()
