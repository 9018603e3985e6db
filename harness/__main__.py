"""``python -m harness`` (also what ``deepspeed -m harness train ...`` launches)."""
import sys

from harness.cli import main

sys.exit(main())
