"""``threadline completion bash|zsh|fish``: valid scripts that complete the real commands."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from threadline.cli import build_parser, main


def _sessions_actions() -> list[str]:
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert commands is not None
    sessions = commands["sessions"]  # type: ignore[index]
    actions = next(a for a in sessions._actions if a.dest == "action").choices
    return list(actions)


SESSIONS_ACTIONS = _sessions_actions()


def script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(bash_script: Path, *words: str) -> list[str]:
    """What the bash function offers for the command line ``threadline WORDS`` (the last
    word is the one being completed)."""
    words_text = " ".join(f"'{w}'" for w in ("threadline", *words))
    program = (
        f"source {bash_script}\n"
        f"COMP_WORDS=({words_text}); COMP_CWORD={len(words)}\n"
        '_threadline; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture
def bash_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "threadline.bash"
    path.write_text(script("bash", capsys))
    return path


def test_the_bash_script_is_valid(bash_script: Path) -> None:
    subprocess.run(["bash", "-n", str(bash_script)], check=True)


def test_bash_completes_subcommands_actions_and_options(bash_script: Path) -> None:
    assert complete(bash_script, "") == [
        "chat",
        "ask",
        "sessions",
        "demo",
        "db",
        "serve",
        "completion",
    ]
    assert complete(bash_script, "se") == ["sessions", "serve"]
    assert complete(bash_script, "sessions", "") == SESSIONS_ACTIONS
    assert complete(bash_script, "sessions", "--db", "x.db", "ex") == ["export"]
    assert "--max-history-tokens" in complete(bash_script, "chat", "--")
    assert complete(bash_script, "chat", "--pl") == ["--plain"]
    assert complete(bash_script, "sessions", "import", "--a") == ["--append"]
    assert complete(bash_script, "completion", "") == ["bash", "zsh", "fish"]
    assert complete(bash_script, "chat", "--session", "") == []  # a value: left to the shell


def test_every_command_of_the_parser_is_in_the_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    fish, zsh = script("fish", capsys), script("zsh", capsys)
    for name in commands:
        assert f"-a {name} " in fish
    assert "-l max-history-tokens -r -F" in fish
    assert zsh.startswith("#compdef threadline\n") and "bashcompinit" in zsh
    assert "complete -o default -F _threadline threadline" in zsh


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_the_zsh_script_parses_and_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "_threadline"
    path.write_text(script("zsh", capsys))
    subprocess.run(["zsh", "-n", str(path)], check=True)

    # as zsh's bashcompinit calls it: COMP_WORDS holds zsh's words (counted from 1) and
    # COMP_CWORD = CURRENT - 1; its compgen leaves the prefix match to zsh itself
    def offered(*words: str) -> list[str]:
        program = (
            f"autoload -U compinit; compinit -u; source {path}\n"
            f"COMP_WORDS=(threadline {' '.join(words)}); COMP_CWORD={len(words)}\n"
            "_threadline; print -l -- $COMPREPLY"
        )
        done = subprocess.run(["zsh", "-c", program], capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert offered("sessions", "ex") == SESSIONS_ACTIONS
    assert "--max-history-tokens" in offered("chat", "--pl")
    assert "--plain" not in offered("sessions", "--j")


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_the_fish_script_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "threadline.fish"
    path.write_text(script("fish", capsys))
    subprocess.run(["fish", "--no-execute", str(path)], check=True)

    def offered(line: str) -> list[str]:
        program = f"source {path}; complete -C {line!r}"
        done = subprocess.run(["fish", "-c", program], capture_output=True, text=True, check=True)
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert offered("threadline sessions ex") == ["export"]
    assert offered("threadline chat --max") == ["--max-history-tokens"]
    assert "sessions" in offered("threadline ") and "ls" not in offered("threadline ")


def test_an_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["completion", "powershell"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
