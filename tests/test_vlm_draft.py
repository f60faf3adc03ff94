"""The model-free part of answering a step in one verified pass (``draft``): which rows the verify pass feeds,
the greedy walk through them, the draft statistics; on a toy vocabulary where every case is worked by hand.
The backends' token-for-token agreement with plain greedy decoding is tested in test_vlm_hf.py."""

from __future__ import annotations

import numpy as np

from emoalign.raters.vlm.answer_probs import CandidateForms
from emoalign.raters.vlm.draft import draft_counts, draft_rows, fed_prefixes, lookup, walk

# toy tokenizer: " " -> 1, digits "1".."9" -> 11..19, "10" written "1","0" (0 -> 10), "dis" 20, "gust" 21,
# "sad" 22, "Sad" 23, " sad" 24, "happy" 25, EOS 99
_TOK = {" ": 1, "0": 10, "dis": 20, "gust": 21, "sad": 22, "Sad": 23, " sad": 24, "happy": 25}
_TOK.update({str(k): 10 + k for k in range(1, 10)})
EOS = {99}


def _encode(text: str) -> list[int]:
    out = []
    while text:
        for piece in sorted(_TOK, key=len, reverse=True):
            if text.startswith(piece):
                out.append(_TOK[piece])
                text = text[len(piece):]
                break
        else:
            raise ValueError(text)
    return out


def _forms(candidates):
    return CandidateForms.build(candidates, lambda s: _encode(s.lower() if s.lower() in {"disgust", " disgust"} else s))


def test_rows_are_the_forms_starting_with_the_first_token_and_the_contexts():
    digits = _forms(tuple(str(k) for k in range(1, 11)))
    # contexts: " " (before " 5"), "1" (continued into "10"), " 1" (continued into " 10")
    assert digits.contexts == [(1,), (11,), (1, 11)]
    # first token "5": the form (15,) and every context; (1,) is a prefix of (1, 11) so it is not fed separately
    assert draft_rows(digits, 15) == [(1, 11), (11,), (15,)]
    # first token "1": forms (11,) and (11, 10) start with it; (11,) is a prefix of (11, 10)
    assert draft_rows(digits, 11) == [(1, 11), (11, 10)]
    # a first token that starts no form: no draft
    assert draft_rows(digits, 25) == []


def test_fed_prefixes_give_each_prefix_once():
    where = fed_prefixes([(1, 11), (11, 10), (15,)])
    assert where == {(1,): (0, 0), (1, 11): (0, 1), (11,): (1, 0), (11, 10): (1, 1), (15,): (2, 0)}


def test_walk_accepts_the_greedy_path_through_the_fed_tree():
    step = lambda k: np.array([float(k)])            # noqa: E731 - a distinguishable stand-in distribution
    greedy = {(11,): 10, (11, 10): 99, (15,): 99}        # what the pass's argmax says after each fed prefix
    table = {k: (g, step(len(k))) for k, g in greedy.items()}
    # "1", then "0" (fed), then EOS: the whole answer "10" from one pass
    tokens, steps, done = walk(11, step(0), table.get, EOS, 8)
    assert tokens == [11, 10, 99] and done and [float(s[0]) for s in steps] == [0, 1, 2]
    # "5" then EOS
    assert walk(15, step(0), table.get, EOS, 8)[0] == [15, 99]
    # the greedy token after (11, 10) leaves the tree: it is accepted (an argmax at a fed position), then greedy
    # decoding must go on from (11, 10, 7)
    leave = dict(table)
    leave[(11, 10)] = (17, step(2))
    tokens, _, done = walk(11, step(0), leave.get, EOS, 8)
    assert tokens == [11, 10, 17] and not done
    # max_new_tokens bounds the walk; EOS as first token finishes at once
    assert walk(11, step(0), table.get, EOS, 2)[0::2] == ([11, 10], True)
    assert walk(99, step(0), table.get, EOS, 8)[0::2] == ([99], True)
    # a first token with nothing fed after it: greedy decoding goes on at once
    assert walk(13, step(0), table.get, EOS, 8)[0::2] == ([13], False)


def test_draft_counts():
    digits = _forms(tuple(str(k) for k in range(1, 11)))
    assert draft_counts(digits, [15, 99], EOS, 8) == (1, 1)          # drafted EOS after "5": accepted
    assert draft_counts(digits, [11, 10, 99], EOS, 8) == (2, 2)      # "0" then EOS after "1"
    assert draft_counts(digits, [15, 17, 99], EOS, 8) == (0, 1)      # "5" went on with "7": EOS rejected
    assert draft_counts(digits, [11, 10, 99], EOS, 2) == (1, 1)      # only one token after the first fits
    assert draft_counts(digits, [25, 99], EOS, 8) == (0, 0)          # no form starts there: nothing drafted
    labels = _forms(("sad", "disgust"))
    assert draft_counts(labels, [20, 21, 99], EOS, 8) == (2, 2)


def test_lookup_splits_found_and_missing():
    table = {(15,): "a", (15, 1): "b"}
    found, missing = lookup(table, [15], [(1,), (2,)])
    assert found == {(1,): "b"} and missing == [(2,)]
