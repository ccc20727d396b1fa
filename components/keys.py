"""The cluster's secrets made here: its SSH key (from config, from a file, or generated once per
cluster), its Ray auth token (generated once per cluster), and each node's SSH host key (generated
once per node and installed on the machine at creation, or, for an adopted host, scanned on first use).

Every host key is pinned: the phases' connections carry it (`connection.hostKey`) and `styx ssh/exec`
check it against a known_hosts file made from the stack's outputs (styx.app.hostkeys)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pulumi
from pulumi_command import local

from styx.components.backends.base import ClusterKey, HostKey
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


def host_key(cfg: ClusterConfig, node: str, parent: pulumi.Resource) -> HostKey:
    """A new ed25519 SSH host key for one node, made once by a local ssh-keygen (no extra provider
    plugin): the private half a secret output in the encrypted state (installed on the machine by its
    backend), the public half plain (pinned by every connection)."""
    gen = local.Command(
        f"{cfg.name}-{node}-host-key",
        create=(
            'd="$(mktemp -d)" && ssh-keygen -q -t ed25519 -N "" -C styx-host-' + cfg.name + "-" + node
            + ' -f "$d/k" && cat "$d/k" "$d/k.pub" && rm -rf "$d"'
        ),
        logging=local.Logging.NONE,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["stdout"]),
    )
    parts = gen.stdout.apply(_split)
    return HostKey(public_key=pulumi.Output.unsecret(parts[1]).apply(_key_only), source="generated",
                   private_key=pulumi.Output.secret(parts[0]), resource=gen)


# ssh-keyscan output, best type first; FixedHostKey then accepts only that type from the host.
_SCAN_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def parse_keyscan(text: str) -> str:
    """The preferred `TYPE BASE64` key of ssh-keyscan's output (lines `HOST TYPE BASE64`)."""
    keys = {}
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) >= 3 and not line.startswith("#"):
            keys.setdefault(f[1], f"{f[1]} {f[2]}")
    for t in _SCAN_PREFERENCE:
        if t in keys:
            return keys[t]
    if keys:
        return next(iter(keys.values()))
    raise ValueError("ssh-keyscan returned no host key")


def scanned_host_key(cfg: ClusterConfig, node: str, host: pulumi.Input[str], port: pulumi.Input[int],
                     parent: pulumi.Resource) -> HostKey:
    """Trust on first use (an adopted host whose key styx did not make): ssh-keyscan once, when this
    resource is created; the key is then recorded in the state and pinned on every later connection.
    A legitimately new key is accepted by replacing this resource (`pulumi up --replace URN`)."""
    limit = cfg.ssh.connect_timeout_s

    def script(v: list) -> str:
        h, p = shlex.quote(str(v[0])), int(v[1])
        # POSIX sh (the provider runs /bin/sh, dash on Debian: no $SECONDS)
        return (f"end=$(($(date +%s) + {limit})); while :; do "
                f"out=$(ssh-keyscan -T {cfg.ssh.per_dial_timeout_s} -p {p} {h} 2>/dev/null) && [ -n \"$out\" ] "
                "&& { printf '%s\\n' \"$out\"; exit 0; }; "
                f"[ \"$(date +%s)\" -lt \"$end\" ] || {{ echo 'styx: no SSH host key from {v[0]}:{p} "
                f"within ssh.connect_timeout_s ({limit}s)' >&2; exit 1; }}; sleep 2; done")

    scan = local.Command(
        f"{cfg.name}-{node}-host-key-scan",
        create=pulumi.Output.all(host, port).apply(script),
        triggers=[host, port],
        logging=local.Logging.STDERR,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return HostKey(public_key=scan.stdout.apply(parse_keyscan), source="first use", resource=scan)


def _key_only(line: str) -> str:
    """`TYPE BASE64` of an authorized_keys / .pub line (the comment dropped)."""
    f = line.split()
    return f"{f[0]} {f[1]}" if len(f) >= 2 else line.strip()


def cloud_init_user_data(hk: HostKey, boot: str = "") -> pulumi.Output[str]:
    """cloud-init user data that makes `hk` the machine's only SSH host key (cc_ssh: the image's keys
    deleted, none generated), then `boot`: more cloud-config keys (the first-boot work,
    styx.components.first_boot). A secret: it holds the private key."""
    assert hk.private_key is not None, "only a generated host key can be installed"

    def render(v: list) -> str:
        priv = "".join(f"    {ln}\n" for ln in v[0].strip().splitlines())
        return ("#cloud-config\n# written by styx: the node's SSH host key, pinned by every connection\n"
                "ssh_deletekeys: true\nssh_genkeytypes: []\nssh_keys:\n"
                f"  ed25519_private: |\n{priv}  ed25519_public: {v[1]}\n") + boot

    return pulumi.Output.secret(pulumi.Output.all(hk.private_key, hk.public_key).apply(render))
