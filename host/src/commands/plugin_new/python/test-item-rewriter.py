import unittest

from host_plugin import Keep, Params, Reject
from host_plugin.run import rewrite_items

from {{module}} import {{Type}}


class Test{{Type}}(unittest.TestCase):
    def test_tags_items_and_rejects_those_without_id(self):
        p = {{Type}}(Params.parse(["tag=t1"]))
        out = rewrite_items(p, ['{"id":"a", "n":1}', "{}"])
        self.assertEqual(out, [Keep('{"id":"a","n":1,"tag":"t1"}'), Reject("the item has no `id`")])
        with self.assertRaises(ValueError):
            {{Type}}(Params.parse(["nope=1"]))


if __name__ == "__main__":
    unittest.main()
