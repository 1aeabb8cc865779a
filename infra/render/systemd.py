"""systemd for the service VMs: command-line quoting and the units of one VM's cloud-config.

`Units` collects a VM's units, the template scripts they call (shipped into BIN_DIR) and the units
enabled at boot; infra/render/cloud_init.py turns it into the `#cloud-config` document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from infra.render.templating import render_template, template_text

BIN_DIR = "/etc/hydrostream/bin"
UNIT_DIR = "/etc/systemd/system"
BASH = "/bin/bash"
# The library the metadata-reading scripts source; shipped with any script that names it.
METADATA_LIBRARY = "gce-metadata.sh"


def systemd_word(word: str, expand: Iterable[str] = ()) -> str:
    """One argument of a systemd command line, quoted; `$` and `%` are literal except `expand`."""
    if "\n" in word:
        raise ValueError(f"a command-line argument cannot hold a newline: {word!r}")
    escaped = word.replace("%", "%%").replace("$", "$$")
    for variable in expand:
        escaped = escaped.replace(variable.replace("$", "$$"), variable)
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_command(words: Sequence[str], expand: Iterable[str] = ()) -> str:
    """A systemd command line of `words`, each quoted by `systemd_word`."""
    return " ".join(systemd_word(word, expand) for word in words)


@dataclass
class Units:
    """One VM's units while they are assembled: unit name -> text, the scripts they call, what starts."""

    units: dict[str, str] = field(default_factory=dict)
    scripts: set[str] = field(default_factory=set)
    enabled: list[str] = field(default_factory=list)

    def script(self, name: str, *args: str) -> list[str]:
        """A command line that runs one of the template scripts, which is then shipped."""
        self.scripts.add(name)
        if name != METADATA_LIBRARY and METADATA_LIBRARY in template_text(name):
            self.scripts.add(METADATA_LIBRARY)
        return [BASH, f"{BIN_DIR}/{name}", *args]

    def oneshot(self, unit: str, description: str, command: list[str], *, requires: Sequence[str] = (),
                wants: Sequence[str] = (), timeout_s: int = 300, network: bool = True,
                once_per_boot: bool = True) -> None:
        """A unit that runs `command` once per boot (one that needs the network retries on failure),
        or, with `once_per_boot=False`, each time a timer starts it."""
        self.units[unit] = render_template(
            "oneshot.service.j2", description=description, requires=list(requires), wants=list(wants),
            timeout_s=timeout_s, network=network, once_per_boot=once_per_boot,
            exec_start=systemd_command(command))

    def calendar_timer(self, unit: str, description: str, calendar: str) -> None:
        """A timer that starts `unit` at the systemd calendar time `calendar`, catching up after downtime."""
        self._timer(unit, render_template("calendar.timer.j2", description=description, unit=unit,
                                          calendar=calendar))

    def timer(self, unit: str, description: str, every_s: int) -> None:
        """A timer that starts `unit` every `every_s` seconds, the first time `every_s` after boot."""
        self._timer(unit, render_template("timer.j2", description=description, unit=unit,
                                          first_s=every_s, every_s=every_s))

    def _timer(self, unit: str, text: str) -> None:
        timer = unit.removesuffix(".service") + ".timer"
        self.units[timer] = text
        self.enabled.append(timer)
