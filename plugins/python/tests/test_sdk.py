"""The Python SDK's own tests, natively (the Rust SDK's cases, same answers)."""

import unittest

from host_plugin import DROP, KEEP, Item, JsonObject, Keep, Params, Reject, RowTransformer, Table
from host_plugin.copy import encode_field, rows
from host_plugin.json import check_value
from host_plugin.pg import INTEGER, OTHER, TEXT, text_length_limit, type_class
from host_plugin.run import rewrite_items, transform_rows
from host_plugin.stac import relink_collection

ITEM = ' { "type" : "Feature","id":"caf\\u00e9-1", "a\\\\b":"x\\"y" ,\n "bbox":[1, 2.50,3,4],"properties":{"z":1,"a":null} } '


class JsonObjectTest(unittest.TestCase):
    def test_unmodified_prints_its_input(self):
        self.assertEqual(Item(ITEM).to_json(), ITEM)

    def test_values_parse_on_demand(self):
        o = Item(ITEM)
        self.assertEqual(o.id(), "café-1")
        self.assertEqual(o.get_raw("bbox"), "[1, 2.50,3,4]")
        self.assertEqual(o.get("bbox"), [1, 2.5, 3, 4])
        self.assertEqual(o.keys(), ["type", "id", "a\\b", "bbox", "properties"])
        self.assertEqual(o.properties().get_raw("a"), "null")
        self.assertIsNone(o.get_str("bbox"))

    def test_set_replaces_in_place_and_appends(self):
        o = Item(ITEM)
        o.set("id", "caf\u00e9-1")  # same text? no: the input had an escape, so it changes
        o.set("type", "Feature")  # the same JSON text: no change
        o.set("new\tkey", {"b": [1, "é"]})
        self.assertEqual(
            o.to_json(),
            '{"type":"Feature","id":"café-1","a\\\\b":"x\\"y","bbox":[1, 2.50,3,4],'
            '"properties":{"z":1,"a":null},"new\\tkey":{"b":[1,"é"]}}',
        )
        self.assertTrue(o.remove("bbox"))
        self.assertFalse(o.remove("bbox"))
        self.assertNotIn("bbox", o)

    def test_unchanged_set_keeps_the_input(self):
        o = Item('{ "id" : "a" }')
        o.set("id", "a")
        self.assertFalse(o.modified)
        self.assertEqual(o.to_json(), '{ "id" : "a" }')

    def test_set_json_checks_and_trims(self):
        o = Item('{"id":"a"}')
        o.set_json("links", " [1, {}] ")
        self.assertEqual(o.to_json(), '{"id":"a","links":[1, {}]}')
        with self.assertRaisesRegex(ValueError, "`x`: invalid JSON"):
            o.set_json("x", "[1,")
        self.assertNotIn("x", o)

    def test_invalid_objects_are_refused(self):
        for bad in ["[]", "{", '{"a":1,}', '{"a" 1}', '{"a":NaN}', '{"a":1} x', '{"a":"\x01"}', "", '{"a":01}']:
            with self.assertRaises(ValueError, msg=bad):
                JsonObject(bad)
        self.assertEqual(JsonObject('{"a":1,"a":2}').get("a"), 1)  # duplicates kept; the first wins
        check_value(" 1.5e3 ")
        with self.assertRaises(ValueError):
            check_value("1 2")

    def test_array_elements_keep_their_text(self):
        o = JsonObject('{"links":[ {"a" : 1} , "x" ]}')
        self.assertEqual(o.get_array_raw("links"), ['{"a" : 1}', '"x"'])
        with self.assertRaisesRegex(ValueError, "`id`"):
            JsonObject('{"id":"a"}').get_array_raw("id")


class CopyTest(unittest.TestCase):
    def table(self, n):
        return Table("public", "t", [(f"c{i}", "text") for i in range(n)])

    def decode(self, t, buf):
        return [list(r) for r in rows(t, buf)]

    def test_decodes_escapes_null_and_empty(self):
        t = self.table(3)
        got = self.decode(t, "a\\\\b\t\\N\t\nx\\ty\\nz\\r\t\\\\N\t\\x41\\101\\b\\q\n")
        self.assertEqual(got, [["a\\b", None, ""], ["x\ty\nz\r", "\\N", "AA\bq"]])
        self.assertEqual(self.decode(t, ""), [])
        self.assertEqual(self.decode(self.table(0), "\n\n"), [[], []])

    def test_refuses_malformed_batches(self):
        t = self.table(2)
        for buf, msg in [
            ("a\tb", "does not end with a newline"),
            ("a\n", "has 1 fields"),
            ("a\tb\tc\n", "has 3 fields"),
            ("a\tb\\\n", "lone backslash"),
            ("a\t\\377\n", "invalid UTF-8"),
            (b"a\t\xff\n", "not UTF-8"),
        ]:
            with self.assertRaisesRegex(ValueError, msg):
                self.decode(t, buf)

    def test_encodes_escapes(self):
        got = "|".join(encode_field(v) for v in ["plain", "", None, "a\\b\tc\nd\re", "\\N"])
        self.assertEqual(got, "plain||\\N|a\\\\b\\tc\\nd\\re|\\\\N")

    def test_transform_reencodes_only_changed_fields(self):
        class T(RowTransformer):
            def transform(self, row):
                if row[0] == "d":
                    row[2] = "new\tvalue"
                    row[0] = "d"  # unchanged: stays as given
                    return KEEP
                return DROP if row[0] == "f" else KEEP

        t = self.table(3)
        outcomes, out = transform_rows(T(Params()), t, b"a\\x41\tb\\\\\tc\nd\te\t\\N\nf\tg\th\n")
        self.assertEqual(outcomes, [KEEP, KEEP, DROP])
        self.assertEqual(out, b"a\\x41\tb\\\\\tc\nd\te\tnew\\tvalue\n")

    def test_require_column_names_the_table(self):
        t = Table("s", "t", [("id", "integer"), ("email", "text")])
        with self.assertRaisesRegex(ValueError, r"^table s.t has no column `x` \(its columns: id, email\)$"):
            t.require_column("x")


class ParamsTest(unittest.TestCase):
    def test_get_require_only(self):
        p = Params.parse(["a=1", "b=x=y", "c="])
        self.assertEqual((p.get("a"), p.get("b"), p.require("c"), p.get("z")), ("1", "x=y", "", None))
        with self.assertRaisesRegex(ValueError, "^missing required parameter `z`$"):
            p.require("z")
        p.only("a", "b", "c")
        with self.assertRaisesRegex(ValueError, r"^unknown parameter `c` \(this plugin accepts: a, b\)$"):
            p.only("a", "b")
        with self.assertRaisesRegex(ValueError, "more than once"):
            Params.parse(["a=1", "a=2"]).get("a")


class MiscTest(unittest.TestCase):
    def test_relink_collection(self):
        self.assertEqual(relink_collection("https://x/collections/old?q=1", "collection", "old", "n w"), "https://x/collections/n%20w?q=1")
        self.assertEqual(relink_collection("../old/collection.json", "parent", "old", "new"), "../new/collection.json")
        self.assertEqual(relink_collection("https://x/collections/o%6cd/items/a", "self", "old", "new"), "https://x/collections/new/items/a")
        self.assertIsNone(relink_collection("https://x/collections/old/items", "self", "old", "new"))
        self.assertIsNone(relink_collection("https://x/old", "root", "old", "new"))

    def test_type_classes(self):
        self.assertEqual(type_class("character varying(20)"), TEXT)
        self.assertEqual(type_class("public.citext"), TEXT)
        self.assertEqual(type_class("integer[]"), OTHER)
        self.assertEqual(type_class("bigint"), INTEGER)
        self.assertEqual(text_length_limit("character varying(20)"), 20)
        self.assertIsNone(text_length_limit("text"))

    def test_rewrite_driver_reports_what_the_host_gets(self):
        from host_plugin import ItemRewriter

        class Tag(ItemRewriter):
            def rewrite(self, item):
                if item.id() == "bad":
                    return Reject("no")
                item.set("t", 1)
                return Keep(item)

        out = rewrite_items(Tag(Params()), ['{"id":"a"}', '{"id":"bad"}', "[]"])
        self.assertEqual(out[:2], [Keep('{"id":"a","t":1}'), Reject("no")])
        self.assertIsInstance(out[2], Reject)


if __name__ == "__main__":
    unittest.main()
