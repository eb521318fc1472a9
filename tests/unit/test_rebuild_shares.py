"""How a rebuild with several jobs shares the partitions (shared.consumer.rebuild_shares)."""
from shared.consumer import rebuild_shares

# (topic, partition) -> (low, high) watermarks, as bus.end_offsets gives them.
MARKS = {("a", 0): (0, 100), ("b", 0): (10, 20), ("a", 1): (0, 40), ("b", 1): (0, 40),
         ("a", 2): (0, 70), ("b", 2): (5, 5), ("a", 3): (0, 0), ("b", 3): (0, 0)}


def _numbers(share) -> set[int]:
    return {tp.partition for tp in share}


def test_partition_p_of_every_topic_goes_to_one_share():
    shares = rebuild_shares(MARKS, 2)
    assert [_numbers(share) for share in shares] == [{0}, {1, 2}]
    assert [(tp.topic, tp.partition, tp.offset) for tp in shares[0]] == [("a", 0, 0), ("b", 0, 10)]


def test_shares_start_at_the_low_watermark_and_leave_out_empty_partitions():
    [share] = rebuild_shares(MARKS, 1)
    assert [(tp.topic, tp.partition, tp.offset) for tp in share] == [
        ("a", 0, 0), ("a", 1, 0), ("a", 2, 0), ("b", 0, 10), ("b", 1, 0)]


def test_no_more_shares_than_partitions_with_records():
    assert len(rebuild_shares(MARKS, 8)) == 3
    assert rebuild_shares({("a", 0): (3, 3)}, 4) == []


def test_the_largest_partitions_are_spread_first():
    marks = {("a", p): (0, size) for p, size in enumerate([50, 50, 40, 30, 30, 20])}
    loads = sorted(sum(_size(marks, tp) for tp in share) for share in rebuild_shares(marks, 2))
    assert loads == [110, 110]


def _size(marks, tp) -> int:
    low, high = marks[(tp.topic, tp.partition)]
    return high - low
