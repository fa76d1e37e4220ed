import unittest

from host_plugin import DROP, KEEP, Params, Table
from host_plugin.run import filter_items, filter_rows

from {{module}} import {{Type}}


class Test{{Type}}(unittest.TestCase):
    def test_keeps_one_collection_and_one_value(self):
        p = {{Type}}(Params.parse(["collection=a", "column=s", "value=on"]))
        items = ['{"id":"1","collection":"a"}', '{"id":"2","collection":"b"}']
        self.assertEqual(filter_items(p, items), [KEEP, DROP])
        table = Table("public", "t", [("id", "integer"), ("s", "text")])
        p.begin_table(table)
        self.assertEqual(filter_rows(p, table, b"1\ton\n2\toff\n"), [KEEP, DROP])


if __name__ == "__main__":
    unittest.main()
