"""`ghafgen new-target`: a draft profile from flags, asking on a terminal for the rest.

Entry point: `draft(name, board_name, passthroughs, vms, ask, cat)`; `ask` is None in a
pipe or in CI, where nothing is asked and defaults are marked GUESS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ghafgen.catalog import Catalog
from ghafgen.catalog.model import Board
from ghafgen.discover.draft import Draft, DraftPassthrough, DraftVm
from ghafgen.errors import ProfileError
from ghafgen.profile import spec
from ghafgen.profile.parse import Problem, name_problem, spec_field, value_problem

Check = Callable[[str], str | None]  # an answer -> why it is wrong, or None


@dataclass(frozen=True)
class Prompter:
    """Wraps typer.prompt so the questions can be tested without a terminal.

    A wrong answer is asked again (typer re-prompts on BadParameter) instead of
    ending the wizard; Ctrl-C at a prompt is an interrupt (exit 130), not the
    "Aborted!" (exit 1) click turns it into.
    """

    prompt: Callable[..., object]

    def __call__(self, text: str, default: str, check: Check | None = None) -> str:
        import typer

        def proc(answer: str) -> str:
            answer = answer.strip()
            why = check(answer) if check else None
            if why:
                raise typer.BadParameter(why)
            return answer

        try:
            return str(self.prompt(text, default=default, value_proc=proc))
        except typer.Abort as e:
            if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise


# Values are checked by validate's own checks (profile.parse), so a flag or an
# answer is refused in the words and with the hint `validate` would print.


def _why(problem: Problem | None) -> str | None:
    return problem.text() if problem is not None else None


def _check(problem: Problem | None, flag: str = "") -> None:
    if problem is not None:
        raise ProfileError(flag + problem.text())


def _vcpus(name: str, cores: int, value: str) -> str | None:
    if not value.isdigit():
        return f"vCPUs: {value!r} is not a number"
    return _why(
        value_problem(
            f"vms.{name}.vcpus", int(value), spec_field(spec.VM, "vcpus"), cores=cores
        )
    )


def _memory(name: str, value: str) -> str | None:
    return _why(
        value_problem(f"vms.{name}.memory", value, spec_field(spec.VM, "memory"))
    )


def _pairs(
    items: list[str], ask: Prompter | None, board: Board
) -> list[tuple[str, str]]:
    if not items and ask is not None:
        answer = ask(
            f"devices to pass, DEVICE:VM separated by commas ({', '.join(board.passable())})",
            "",
            lambda a: next(
                (w for w in (_pair_error(i, board) for i in _split(a)) if w), None
            ),
        )
        items = _split(answer)
        flag = ""
    else:
        flag = "--passthrough "
    pairs = []
    for item in items:
        why = _pair_error(item, board)
        if why:
            raise ProfileError(f"{flag}{why}")
        dev, _sep, vm = item.partition(":")
        pairs.append((dev, vm))
    return pairs


def _split(answer: str) -> list[str]:
    return [i.strip() for i in answer.split(",") if i.strip()]


def _pair_error(item: str, board: Board) -> str | None:
    dev, sep, vm = item.partition(":")
    if not sep or dev not in board.passable():
        return (
            f"{item!r}: write DEVICE:VM with a device of "
            f"{board.name}: {', '.join(board.passable())}"
        )
    why = _why(
        value_problem(
            f"hardware.nvidia.passthroughs.{dev}.vm",
            vm,
            spec_field(spec.PASSTHROUGH, "vm"),
        )
    )
    return f"{item!r}: {why}" if why else None


def _vms(
    items: list[str],
    wanted: list[str],
    ask: Prompter | None,
    board: Board,
) -> list[DraftVm]:
    given: dict[str, DraftVm] = {}
    for item in items:
        parts = item.split(":")
        flag = f"--vm {item!r}: "
        if len(parts) != 3 or not parts[1].isdigit():
            raise ProfileError(f"{flag}write NAME:VCPUS:MEMORY, e.g. net-vm:2:1G")
        name, vcpus, memory = parts
        _check(name_problem("vms", name, spec.VM), flag)
        why = _vcpus(name, board.cpu_cores, vcpus) or _memory(name, memory)
        if why:
            raise ProfileError(flag + why)
        given[name] = DraftVm(name, int(vcpus), memory, guess=None)  # the user's own
    out = list(given.values())
    for name in wanted:
        if name in given:
            continue
        if ask is not None:
            vcpus = ask(
                f"vCPUs for {name}",
                "1",
                partial(_vcpus, name, board.cpu_cores),
            )
            memory = ask(
                f"memory for {name}",
                "1G",
                partial(_memory, name),
            )
            out.append(DraftVm(name, int(vcpus), memory, guess=None))
        else:
            out.append(
                DraftVm(name, 1, "1G", guess="default; set --vm NAME:VCPUS:MEMORY")
            )
    return out


def draft(
    name: str,
    board_name: str | None,
    passthroughs: list[str],
    vms: list[str],
    ask: Prompter | None,
    cat: Catalog,
) -> Draft:
    """Raises ProfileError on a flag that cannot make a valid profile."""
    _check(value_problem("target.name", name, spec_field(spec.TARGET, "name")))
    names = cat.board_names()
    if board_name is None:
        if ask is None:
            raise ProfileError(f"give --board, one of: {', '.join(names)}")
        # The carriers' plain names; a `+<sku>` name or a bare SKU is taken too.
        plain = [n for n in names if "+" not in n]
        board_name = ask(
            f"board ({', '.join(plain)})",
            plain[0],
            lambda a: None if cat.resolve(a) else f"no board {a!r}",
        )
    resolved = cat.resolve(board_name)
    if resolved is None:
        raise ProfileError(
            f"no board {board_name!r}; one of: {', '.join(names)} "
            "(or a module SKU such as p3701-0005)"
        )
    board = cat.board(resolved)
    pairs = _pairs(passthroughs, ask, board)
    entries = []
    for dev, vm in pairs:
        slot = board.slots.get(dev)
        entry = DraftPassthrough(name=dev, vm=vm, vm_guessed=False)
        if slot is not None:
            entry.functions = [f"{slot.controller.domain:04x}:01:00.0"]
            entry.notes = [
                f"GUESS: the card's functions; `lspci -D` on the board lists them "
                f"({slot.description})"
            ]
        entries.append(entry)
    wanted = list(dict.fromkeys(vm for _d, vm in pairs))
    return Draft(
        target=name,
        board=board.name,
        platform=tuple(board.devices),
        flavor="l4t",
        flavor_guess="the L4T tree Ghaf boots; use mainline for an upstream kernel's tree",
        header=[
            f"Scaffolded by `ghafgen new-target {name}`. Lines marked GUESS need a check."
        ],
        passthroughs=entries,
        vms=_vms(vms, wanted, ask, board),
    )
