"""The package imports cheaply and the CLI answers --help."""

import subprocess
import sys


def test_import_is_cheap_and_side_effect_free():
    code = (
        "import sys, vqa_shap, vqa_shap.schema.records, vqa_shap.registry, vqa_shap.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'shap') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_lists_commands():
    from vqa_shap.cli import COMMANDS

    out = subprocess.run([sys.executable, "-m", "vqa_shap.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_every_cli_command_has_help():
    from vqa_shap.cli import COMMANDS

    for name in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "vqa_shap.cli", name, "--help"], capture_output=True, text=True)
        assert out.returncode == 0, (name, out.stderr)
        assert "usage:" in out.stdout
