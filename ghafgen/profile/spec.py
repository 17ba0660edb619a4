"""The profile format, declared once.

`profile.parse` checks a TOML document against these tables and `profile.schema`
turns them into JSON Schema, so the checker and the schema cannot disagree.
"""

from typing import NamedTuple

from ghafgen.catalog import load
from ghafgen.catalog.model import FLAVORS

# The format documents the shipped catalog's kernel pins (the default host
# kernel, the series BPMP virtualization builds on): a profile is read before
# any command has chosen a catalog, and the JSON schema is published from this
# module. The rules check a profile against the catalog they are given.
SHIPPED_PINS = load().kernel_pins

# Names end up as Nix attribute names, systemd unit names and file names, so
# they are restricted to a set that is safe, unquoted, in all three.
VM_NAME = r"^[a-z][a-z0-9-]{0,31}$"
TARGET_NAME = r"^[a-z][a-z0-9-]{0,62}$"
PASSTHROUGH_NAME = r"^[a-z][a-z0-9_-]{0,47}$"
BDF = r"^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$"
PCI_ID = r"^[0-9a-f]{4}:[0-9a-f]{4}$"
# NixOS rejects kernel parameters with spaces; quotes, backslashes, `$` and
# backticks have no use on a kernel command line and are refused as well.
KERNEL_PARAM = r"^[A-Za-z0-9_.,:=+/@%-]+$"
KERNEL_VERSION = r"^[0-9]{1,2}\.[0-9]{1,3}(\.[0-9]{1,4})?$"
SIZE = r"^[1-9][0-9]{0,15}[KMGT]?$"
# An absolute path of plain names; a `.` or `..` component is refused, so a
# disk's path or a mount point cannot climb out of where it says it is.
ABS_PATH = r"^(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)+$"
# A size the output writes in MiB (microvm.nix's `mem` and volume `size`):
# whole MiB only, so nothing is cut on the way; a bare number (bytes) and K
# are refused.
MIB_SIZE = r"^[1-9][0-9]{0,15}[MGT]$"
DESCRIPTION_MAX = 200


class Field(NamedTuple):
    key: str
    type: str  # str | int | bool | size | list[str] | list[int]
    doc: str
    required: bool = False
    default: object = None
    enum: tuple[str, ...] = ()
    pattern: str = ""
    max_len: int = 0
    minimum: int | None = None
    maximum: int | None = None
    max_items: int = 0


class Table(NamedTuple):
    """A table of fields; a `*` in `path` stands for a user-chosen name."""

    path: tuple[str, ...]
    doc: str
    fields: tuple[Field, ...]
    name_pattern: str = ""
    name_doc: str = ""

    def field(self, key: str) -> Field | None:
        return next((f for f in self.fields if f.key == key), None)


TARGET = Table(
    ("target",),
    "What is built: the target's name, its board and the device tree it boots.",
    (
        Field(
            "name",
            "str",
            "Target name; becomes the output folder and flake attribute.",
            required=True,
            pattern=TARGET_NAME,
            max_len=63,
        ),
        Field(
            "board",
            "str",
            "Board from the catalog (see `ghafgen show --boards`).",
            required=True,
            max_len=64,
        ),
        Field(
            "dt_flavor",
            "str",
            "Device-tree flavour the host boots: L4T (as Ghaf uses) or mainline.",
            default="l4t",
            enum=FLAVORS,
        ),
        Field(
            "kernel_version",
            "str",
            "Host kernel version (major.minor); BPMP virtualization needs "
            + " or ".join(SHIPPED_PINS.host_bpmp_series)
            + " (the series the pinned BPMP host proxy builds on).",
            default=SHIPPED_PINS.host_series,
            pattern=KERNEL_VERSION,
            max_len=12,
        ),
        Field(
            "host",
            "str",
            "Physical machine of this target; profiles on one host are checked together.",
            pattern=TARGET_NAME,
            max_len=63,
        ),
        Field(
            "rootfs",
            "str",
            "Where the host's root filesystem lives (default: the board's).",
            enum=("emmc", "nvme", "usb", "sd"),
        ),
        Field(
            "description",
            "str",
            "One line for humans; copied into generated comments.",
            max_len=DESCRIPTION_MAX,
        ),
        Field(
            "host_cores",
            "list[int]",
            "Cores the host keeps: no VM is pinned there.",
            default=(),
            minimum=0,
            maximum=1023,
            max_items=256,
        ),
        Field(
            "isolated_cores",
            "list[int]",
            "Real-time cores taken from the scheduler (isolcpus, nohz_full, rcu_nocbs).",
            default=(),
            minimum=0,
            maximum=1023,
            max_items=256,
        ),
    ),
)

VIRTUALIZATION = Table(
    ("hardware", "nvidia", "virtualization"),
    "Host virtualization support (Ghaf's hardware.nvidia.virtualization).",
    (
        Field(
            "enable",
            "bool",
            "VFIO platform support and the BPMP host proxy.",
            default=False,
        ),
        Field(
            "bpmp_allow_all",
            "bool",
            "DANGEROUS: let guests reach every BPMP clock, reset and power domain.",
            default=False,
        ),
        Field(
            "bpmp_per_vm",
            "bool",
            "One BPMP host device per VM (/dev/bpmp-host-<vm>), each allowing only that "
            "VM's clocks, resets and power domains; resources two VMs share become "
            "read-and-enable only. Needed when two or more VMs get BPMP-backed devices "
            "(GG307); adds ghafgen's host proxy and QEMU bridge patches.",
            default=False,
        ),
        Field(
            "extra_allowed_clocks",
            "list[int]",
            "Raw BPMP clock IDs to allow beyond what the passed devices need.",
            default=(),
            minimum=0,
            maximum=65535,
            max_items=64,
        ),
        Field(
            "extra_allowed_resets",
            "list[int]",
            "Raw BPMP reset IDs to allow beyond what the passed devices need.",
            default=(),
            minimum=0,
            maximum=65535,
            max_items=64,
        ),
        Field(
            "extra_allowed_power_domains",
            "list[int]",
            "Raw BPMP power-domain IDs to allow beyond what the passed devices need.",
            default=(),
            minimum=0,
            maximum=65535,
            max_items=64,
        ),
    ),
)

PASSTHROUGH = Table(
    ("hardware", "nvidia", "passthroughs", "*"),
    "One device or PCIe slot given to a VM (Ghaf's hardware.nvidia.passthroughs.<name>).",
    (
        Field(
            "enable",
            "bool",
            "Pass this device; a table is on unless this is false.",
            default=True,
        ),
        Field(
            "device",
            "str",
            "Catalog device or slot (default: the table's name).",
            pattern=PASSTHROUGH_NAME,
            max_len=48,
        ),
        Field(
            "vm",
            "str",
            "VM that receives the device; omit to bind it to VFIO on the host only. "
            "Which VMs get the integrated GPU group and the display decides the GPU "
            "topology: split (compute gpu-vm + display-only disp-vm) or accelerated "
            "(one gui-vm); `ghafgen show` prints each VM's role.",
            pattern=VM_NAME,
            max_len=32,
        ),
        Field(
            "functions",
            "list[str]",
            "PCI functions (domain:bus:device.function) to pass, for slots.",
            default=(),
            pattern=BDF,
            max_items=8,
        ),
        Field(
            "kind",
            "str",
            "What the PCIe card is; a GPU brings its audio function and a display.",
            default="other",
            enum=("gpu", "wifi", "nic", "nvme", "other"),
        ),
        Field(
            "audio_function",
            "bool",
            "For a GPU: the card has an HDMI/DP audio function (default true).",
            default=True,
        ),
        Field(
            "display",
            "bool",
            "For a GPU: the VM drives a display with it (default true).",
            default=True,
        ),
        Field(
            "ids",
            "list[str]",
            "vendor:device IDs, for binding with vfio-pci.ids=.",
            default=(),
            pattern=PCI_ID,
            max_items=8,
        ),
        Field(
            "binding",
            "str",
            "How the host hands PCI functions to vfio-pci.",
            default="driver-override",
            enum=("driver-override", "ids"),
        ),
        Field(
            "iommu_group",
            "list[str]",
            "Every function in the device's host IOMMU group (from discover).",
            default=(),
            pattern=BDF,
            max_items=32,
        ),
        Field(
            "max_power_w",
            "int",
            "Most power the card draws from the slot, in watts.",
            minimum=0,
            maximum=1000,
        ),
        Field("lanes", "int", "PCIe lanes the card uses.", minimum=1, maximum=16),
        Field(
            "bar_size",
            "size",
            'Largest BAR of the card, e.g. "4G".',
            pattern=SIZE,
            max_len=17,
        ),
    ),
    name_pattern=PASSTHROUGH_NAME,
    name_doc="a catalog device or slot name, or any name with `device` set",
)

VM = Table(
    ("vms", "*"),
    "A microvm.nix guest.",
    (
        Field("vcpus", "int", "Virtual CPUs.", required=True, minimum=1, maximum=256),
        Field(
            "memory",
            "size",
            'Guest RAM in whole MiB, e.g. "1G" or "1536M" (M, G or T).',
            required=True,
            pattern=MIB_SIZE,
            max_len=17,
        ),
        Field(
            "kernel_params",
            "list[str]",
            "Extra guest kernel parameters, one token each.",
            default=(),
            pattern=KERNEL_PARAM,
            max_len=256,
            max_items=64,
        ),
        Field(
            "kernel",
            "str",
            'Guest kernel series, e.g. "6.12"; default: the series its devices need.',
            pattern=KERNEL_VERSION,
            max_len=12,
        ),
        Field(
            "pinning",
            "list[int]",
            "Physical cores for the vCPUs, one per vCPU in order.",
            default=(),
            minimum=0,
            maximum=1023,
            max_items=256,
        ),
        Field(
            "cpu_weight",
            "int",
            "systemd CPUWeight of the VM (all its vCPUs alike).",
            minimum=1,
            maximum=10000,
        ),
        Field(
            "rt_priority",
            "int",
            "SCHED_FIFO priority of the VM (all its vCPUs alike); needs isolated cores.",
            minimum=1,
            maximum=99,
        ),
        Field("hugepages", "bool", "Back guest RAM with huge pages.", default=False),
        Field(
            "vsock_cid",
            "int",
            "vsock context ID for host<->VM sockets (3 or more).",
            minimum=3,
            maximum=4294967294,
        ),
        Field(
            "shared",
            "list[str]",
            "Devices the VM gets emulated over virtio or QEMU.",
            default=(),
            enum=("network", "console"),
            max_items=2,
        ),
    ),
    name_pattern=VM_NAME,
    name_doc="a lowercase name: letters, digits and '-', at most 32 characters",
)

# A source URL reaches git and Nix as an argument: a scheme from this list, or
# a local path. Neither may start with '-' (it would read as an option), a
# path has no ':' (git would take `host:path` for ssh), and transports that
# run programs (`ext::`, `fd::`) have no scheme here.
SOURCE_URL = (
    r"^(?:(?:git\+)?(?:https?|ssh|git|file)://[A-Za-z0-9_.~%@/][A-Za-z0-9+.:/_~@%=-]*"
    r"|[A-Za-z0-9_.~/][A-Za-z0-9+._/~@%=-]*)$"
)
SOURCE_REV = r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}$"
SOURCE_NAME = r"^[a-z][a-z0-9-]{0,31}$"

SOURCE = Table(
    ("sources", "*"),
    "An external source generated modules fetch; `ghafgen prefetch` pins it in ghafgen.lock.",
    (
        Field(
            "url",
            "str",
            "Git URL (https://, ssh://, git://, file://, optionally git+), a tarball "
            "URL or a local folder.",
            required=True,
            pattern=SOURCE_URL,
            max_len=500,
        ),
        Field(
            "rev",
            "str",
            "Branch, tag or commit (default: the remote's HEAD).",
            pattern=SOURCE_REV,
            max_len=100,
        ),
    ),
    name_pattern=SOURCE_NAME,
    name_doc="a source name such as 'ghaf'",
)

VOLUME = Table(
    ("vms", "*", "volumes", "*"),
    "A disk image on a host disk, mounted in the VM (microvm.nix volumes).",
    (
        Field(
            "size",
            "size",
            'Image size in whole MiB, e.g. "8G" (M, G or T).',
            required=True,
            pattern=MIB_SIZE,
            max_len=17,
        ),
        Field(
            "mount",
            "str",
            "Mount point in the VM.",
            required=True,
            pattern=ABS_PATH,
            max_len=200,
        ),
        Field(
            "disk",
            "str",
            "Host disk ([disks.<name>]) that holds the image.",
            required=True,
            pattern=SOURCE_NAME,
            max_len=32,
        ),
    ),
    name_pattern=r"^[a-z][a-z0-9-]{0,31}$",
    name_doc="a volume name: lowercase letters, digits and '-'",
)

DISK = Table(
    ("disks", "*"),
    "A host disk, for volume budgets.",
    (
        Field(
            "size",
            "size",
            'A size, e.g. "64G".',
            required=True,
            pattern=SIZE,
            max_len=17,
        ),
        Field("root", "bool", "The host's root filesystem is on it.", default=False),
        Field(
            "path",
            "str",
            "Where the host mounts it; volume images go there "
            "(default: the VM's state directory).",
            pattern=ABS_PATH,
            max_len=200,
        ),
    ),
    name_pattern=SOURCE_NAME,
    name_doc="a disk name such as 'nvme' or 'emmc'",
)

CHANNEL = Table(
    ("channels", "*"),
    "A shared-memory channel between VMs (QEMU ivshmem-plain; PCT IVC, Jailhouse ivshmem).",
    (
        Field(
            "vms",
            "list[str]",
            "The VMs that share it (two or more).",
            required=True,
            pattern=VM_NAME,
            max_items=16,
        ),
        Field(
            "size",
            "size",
            'Region size, a power of two, e.g. "2M".',
            required=True,
            pattern=SIZE,
            max_len=17,
        ),
    ),
    name_pattern=r"^[a-z][a-z0-9-]{0,31}$",
    name_doc="a channel name: lowercase letters, digits and '-'",
)

TABLES: tuple[Table, ...] = (
    TARGET,
    VIRTUALIZATION,
    PASSTHROUGH,
    VM,
    SOURCE,
    VOLUME,
    DISK,
    CHANNEL,
)

# Tables that only hold other tables.
CONTAINERS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("target", "hardware", "vms", "sources", "disks", "channels"),
    ("hardware",): ("nvidia",),
    ("hardware", "nvidia"): ("virtualization", "passthroughs"),
}
COLLECTIONS: dict[tuple[str, ...], Table] = {
    ("hardware", "nvidia", "passthroughs"): PASSTHROUGH,
    ("vms",): VM,
    ("sources",): SOURCE,
    ("disks",): DISK,
    ("channels",): CHANNEL,
}
# A table of tables inside a collection entry: vms.<name>.volumes.<volume>.
NESTED: dict[Table, tuple[str, Table]] = {VM: ("volumes", VOLUME)}
REQUIRED_TOP = ("target",)
