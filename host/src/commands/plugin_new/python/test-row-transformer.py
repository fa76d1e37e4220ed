import unittest

from host_plugin import KEEP, Params, Table
from host_plugin.run import transform_rows

from {{module}} import {{Type}}


class Test{{Type}}(unittest.TestCase):
    def test_upper_cases_the_column_and_keeps_nulls(self):
        table = Table("public", "users", [("id", "integer"), ("name", "text")])
        p = {{Type}}(Params.parse(["column=name"]))
        p.begin_table(table)
        outcomes, rows = transform_rows(p, table, b"1\tada\n2\t\\N\n")
        self.assertEqual(outcomes, [KEEP, KEEP])
        self.assertEqual(rows, b"1\tADA\n2\t\\N\n")
        p = {{Type}}(Params.parse(["column=nope"]))
        with self.assertRaisesRegex(ValueError, "has no column `nope`"):
            p.begin_table(table)


if __name__ == "__main__":
    unittest.main()
