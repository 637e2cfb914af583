# SPDX-License-Identifier: MIT
"""The integration runner (jittest.main) never counts what did not run as passed: a program
whose every test was skipped exits 77 (meson: SKIP), and one that defines a test class its
runner would not run fails. Runs small modules through it; needs no root."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")


def run_module(source):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "test_fixture.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        env = dict(os.environ, PYTHONPATH=INTEGRATION, PYTHONDONTWRITEBYTECODE="1")
        return subprocess.run([sys.executable, path], env=env, capture_output=True, text=True, timeout=60)


class RunnerGuards(unittest.TestCase):
    def test_passing_module_passes(self):
        p = run_module("""
            import unittest, jittest
            class A(unittest.TestCase):
                def test_a(self): pass
            if __name__ == "__main__":
                jittest.main()
        """)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_failing_module_fails(self):
        p = run_module("""
            import unittest, jittest
            class A(unittest.TestCase):
                def test_a(self): self.fail("no")
            if __name__ == "__main__":
                jittest.main()
        """)
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_all_skipped_is_a_skip(self):
        p = run_module("""
            import unittest, jittest
            @unittest.skipIf(True, "not here")
            class A(unittest.TestCase):
                def test_a(self): pass
                def test_b(self): pass
            if __name__ == "__main__":
                jittest.main()
        """)
        self.assertEqual(p.returncode, 77, p.stderr)
        self.assertIn("all 2 tests skipped", p.stderr)

    def test_some_skipped_still_passes(self):
        p = run_module("""
            import unittest, jittest
            class A(unittest.TestCase):
                def test_a(self): pass
                @unittest.skip("not here")
                def test_b(self): pass
            if __name__ == "__main__":
                jittest.main()
        """)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_class_after_main_fails(self):
        p = run_module("""
            import unittest, jittest
            from jittest import BrokerTestCase
            class A(unittest.TestCase):
                def test_a(self): pass
            if __name__ == "__main__":
                jittest.main()
            class Late(BrokerTestCase):
                def test_never(self): pass
        """)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("would never run: Late", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
