"""Encrypted PDFs (issue 21 §5): owner-password-only ones are read, AES included, and one that can't be read
says it is encrypted, never that it is a scan needing OCR."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from search.reading import read_paths
from tests.hostile_inputs import encrypted_pdf

ROOT = Path(__file__).resolve().parent.parent
ALGORITHMS = ("RC4-128", "AES-128", "AES-256")


def test_cryptography_is_a_dependency_so_pypdf_can_decrypt_aes():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("cryptography") for line in dependencies), dependencies
    assert any(line.startswith("cryptography") for line in requirements)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_owner_password_only_pdfs_are_read(tmp_path, algorithm):
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypted_pdf("Quarterly figures", algorithm))
    result = read_paths([path], names=["restricted.pdf"])
    assert [document.text for document in result.documents] == ["Quarterly figures"]
    assert result.problems == ()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_pdf_that_needs_a_password_says_so(tmp_path, algorithm):
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf("Quarterly figures", algorithm, user_password="open sesame"))
    result = read_paths([path], names=["locked.pdf"])
    assert result.documents == ()
    assert [str(problem) for problem in result.problems] == [
        "locked.pdf: encrypted PDF that needs a password; save an unprotected copy and read that"]


def test_without_cryptography_an_aes_pdf_names_encryption_and_the_fix(tmp_path):
    for algorithm in ("AES-128", "AES-256"):
        (tmp_path / f"{algorithm}.pdf").write_bytes(encrypted_pdf("Quarterly figures", algorithm))
    # A fresh interpreter where `cryptography` cannot be imported, as where it is not installed.
    script = ("import json, sys; sys.modules['cryptography'] = None\n"
              "from pathlib import Path\nfrom search.reading import read_paths\n"
              f"folder = Path({str(tmp_path)!r})\n"
              "result = read_paths(sorted(folder.glob('*.pdf')), names=['AES-128.pdf', 'AES-256.pdf'])\n"
              "print(json.dumps([str(problem) for problem in result.problems]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=True)
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    expected = ("encrypted with AES, which pypdf decrypts only with the cryptography package (cryptography>=3.1 is "
                "required for AES algorithm); skipped; pip install cryptography")
    assert problems == [f"AES-128.pdf: {expected}", f"AES-256.pdf: {expected}"]
