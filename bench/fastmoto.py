"""Hot spots of moto (in process), made cheaper for the pipeline benchmark: same results, checked.

Profiling the pipeline in process (cProfile and py-spy, see bench/RESULTS.md) put most of the
wall time in moto itself, not in our code, some of it growing with the number of items:

1. **DynamoDB response serialization.** moto 5.2 serializes every response by walking the
   botocore output shape and, for every member of every structure, asking six alias providers
   which attribute of the Python object holds it. A DynamoDB item is a map of `AttributeValue`
   structures of ten members each (S, N, B, SS, NS, BS, M, L, NULL, BOOL), of which one is
   present: nine misses per attribute, each through all six providers (~40 % of an N=200 run
   with ~40-attribute job items). `FastDynamoSerializer` serializes an `AttributeValue` that is a
   one-key dict `{type: value}` (what moto's `dynamo_to_dict` makes) by serializing that one
   member, with moto's own member serializers. Exact: the providers' candidate keys for an absent
   member are its name, its lower-case form and shape-derived names ("ListAttributeValue", ...),
   none of which is a key of that dict, so moto's walk finds nothing for the other nine either.
   Everything else (other shapes, errors, other services) goes through moto's serializer as is.
2. **GSI query sort.** `Table.sorted_items` sorts the matches by tuples of `DynamoType`, whose
   comparisons build `Decimal`s on every call (O(N log N) per query of the ~N-long queue list).
   `_sorted_items` sorts by each key attribute's `cast_value`, computed once per item: the same
   order (`DynamoType.__lt__` compares `cast_value`; `__eq__` also the type, and a key attribute
   has one type, fixed by the table's AttributeDefinitions), stable in both.
3. **`Table.all_items`** sorts every item of the table the same slow way on every Query and Scan:
   O(N log N) per poller wake. A GSI query then sorts its matches by (index hash key, index range
   key, table hash key), a total order since the table key is unique, so that first sort cannot
   change a GSI query's result: skipped there. Scans and table queries get the same order, sorted
   by `cast_value`.
4. **SQS receive** checks each received message's retention through `get_queue_attributes`, which
   builds all the queue's attributes, three of them counting every message in the queue:
   O(messages) per message received. `_retention_ok` reads the same `message_retention_period`.
5. **SQS send** looks up `ContentBasedDeduplication` (a FIFO-only attribute) in the same full
   attribute dict, so each message sent counts every message in the queue three times: O(N^2) to
   enqueue the N upload events. While `send_message` runs, the three message counts (which it
   never reads: it only asks for ContentBasedDeduplication) are not computed.
6. Plain overhead: moto lists a response class's methods with `inspect.getmembers` on every
   request (`method_names_from_class`, a pure function of the class): cached.

`accelerated(verify=True)` also runs moto's own code next to each shortcut (every DynamoDB
response, sort and retention check) and raises `Mismatch` on any difference, and checks that each
GSI sort key is unique; the smoke test and the bench's N=20 run use it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any

from moto.core import responses as moto_responses
from moto.core import serialize as moto_serialize
from moto.dynamodb.models import table as moto_table
from moto.sqs import models as moto_sqs

_ATTRIBUTE_VALUE = "AttributeValue"


class Mismatch(AssertionError):
    """A shortcut and moto's own code disagreed (a bug here: the run is not to be trusted)."""


class Checks:
    """How many results verify mode compared with moto's own (0 when not verifying)."""

    responses = 0
    sorts = 0
    retention = 0


_verify = False
_state = threading.local()


class FastDynamoSerializer(moto_serialize.JSONSerializer):
    """moto's JSON serializer with an exact shortcut for one-key `AttributeValue` dicts."""

    def _serialize_type_structure(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == _ATTRIBUTE_VALUE and type(value) is dict and len(value) == 1:
            ((type_code, member_value),) = value.items()
            member_shape = shape.members.get(type_code)
            if member_shape is not None and member_value is not None:
                member_shape.parent = shape
                wrapper: Any = self.MAP_TYPE()
                self._serialize(wrapper, member_value, member_shape, type_code)
                self._default_serialize(serialized, wrapper, shape, key)
                return
        super()._serialize_type_structure(serialized, value, shape, key)

    def serialize(self, result: Any) -> Any:
        response = super().serialize(result)
        if _verify:
            reference = moto_serialize.JSONSerializer(
                operation_model=self.operation_model,
                context=self.context,
                pretty_print=self.pretty_print,
                value_picker=self._value_picker,
            ).serialize(result)
            if _normalized(response) != _normalized(reference):
                raise Mismatch(f"{self.operation_name}: fast {response!r} != moto {reference!r}")
            Checks.responses += 1
        return response


def _normalized(response: Any) -> Any:
    body = response["body"]
    return (response["status_code"], dict(response["headers"]), json.loads(body) if body else body)


_original_sorted_items = moto_table.Table.sorted_items
_original_all_items = moto_table.Table.all_items
_original_query = moto_table.Table.query
_original_retention = moto_sqs.SQSBackend.is_message_valid_based_on_retention_period
_original_method_names = moto_responses.method_names_from_class
_method_names = functools.lru_cache(maxsize=None)(_original_method_names)


def _sorted_items(
    self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
) -> Any:
    attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    expected = _original_sorted_items(self, hash_key_attrs, range_key_attrs, list(items)) if _verify else None
    items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in attrs))
    if expected is not None:
        if [id(i) for i in items] != [id(i) for i in expected]:
            raise Mismatch(f"sort order on {attrs} differs from moto's")
        keys = [tuple(item.attrs[name].cast_value for name in attrs) for item in items]
        if len(set(keys)) != len(keys):
            raise Mismatch(f"sort keys {attrs} are not unique: the order would depend on all_items")
        Checks.sorts += 1
    return items


def _all_items(self: Any) -> list[Any]:
    items: list[Any] = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    if getattr(_state, "gsi_query", False):
        return items  # the GSI query's own total-order sort decides (verify mode checks it is total)
    items.sort(
        key=lambda x: (
            (x.hash_key.cast_value, x.range_key.cast_value) if x.range_key else x.hash_key.cast_value
        )
    )
    if _verify:
        if [id(i) for i in items] != [id(i) for i in _original_all_items(self)]:
            raise Mismatch(f"all_items order differs from moto's on table {self.name}")
        Checks.sorts += 1
    return items


def _query(self: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
    _state.gsi_query = bool(index_name)
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        _state.gsi_query = False


_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_original_counts = {name: getattr(moto_sqs.Queue, name) for name in _COUNTS}
_original_send = moto_sqs.SQSBackend.send_message


def _count_property(name: str) -> property:
    original = _original_counts[name]

    def count(queue: Any) -> int:
        if getattr(_state, "sqs_send", False) and not _verify:
            return -1  # never read: send_message only looks up ContentBasedDeduplication
        return int(original.fget(queue))

    return property(count)


def _send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
    _state.sqs_send = True
    try:
        return _original_send(self, *args, **kwargs)
    finally:
        _state.sqs_send = False


def _retention_ok(self: Any, queue_name: str, message: Any) -> bool:
    retention_period = self.get_queue(queue_name).message_retention_period
    ok = not retention_period + message.sent_timestamp / 1000 <= moto_sqs.unix_time()
    if _verify:
        if ok != _original_retention(self, queue_name, message):
            raise Mismatch("SQS retention check differs from moto's")
        Checks.retention += 1
    return ok


@contextlib.contextmanager
def accelerated(*, verify: bool = False) -> Iterator[None]:
    """Install the shortcuts for the block (with `verify`, compare each with moto's own)."""
    global _verify
    serializers = moto_serialize.SERVICE_SPECIFIC_SERIALIZERS
    saved = serializers.get("dynamodb")
    serializers["dynamodb"] = {**(saved or {}), "json": FastDynamoSerializer}
    moto_table.Table.sorted_items = _sorted_items  # type: ignore[method-assign]
    moto_table.Table.all_items = _all_items  # type: ignore[method-assign]
    moto_table.Table.query = _query  # type: ignore[method-assign]
    moto_sqs.SQSBackend.is_message_valid_based_on_retention_period = _retention_ok  # type: ignore[method-assign]
    moto_responses.method_names_from_class = _method_names
    moto_sqs.SQSBackend.send_message = _send_message  # type: ignore[method-assign]
    for name in _COUNTS:
        setattr(moto_sqs.Queue, name, _count_property(name))
    _verify = verify
    try:
        yield
    finally:
        _verify = False
        for name, original in _original_counts.items():
            setattr(moto_sqs.Queue, name, original)
        moto_sqs.SQSBackend.send_message = _original_send  # type: ignore[method-assign]
        moto_responses.method_names_from_class = _original_method_names
        moto_sqs.SQSBackend.is_message_valid_based_on_retention_period = _original_retention  # type: ignore[method-assign]
        moto_table.Table.query = _original_query  # type: ignore[method-assign]
        moto_table.Table.all_items = _original_all_items  # type: ignore[method-assign]
        moto_table.Table.sorted_items = _original_sorted_items  # type: ignore[method-assign]
        if saved is None:
            serializers.pop("dynamodb", None)
        else:
            serializers["dynamodb"] = saved
