"""xentlab.data.taxonomy: tree shape, determinism, text/ancestor word sharing, domains, errors."""

import pytest

from xentlab.data.taxonomy import TaxonomyConfig, make_taxonomy

CFG = TaxonomyConfig(n_domains=3, depth=3, branching=(2, 3), n_examples=2)


def test_tree_structure_and_domains():
    tax = make_taxonomy(CFG, seed=0)
    assert tax.roots == (0, 1, 2) and len(tax.at_depth(0)) == 3
    for c in tax.concepts:
        if c.parent is None:
            assert c.depth == 0 and c.ancestors == () and tax.roots[c.domain] == c.id
            continue
        p = tax.concepts[c.parent]
        assert p.id < c.id and c.ancestors == (*p.ancestors, p.id) and c.depth == p.depth + 1
        assert c.domain == p.domain and c.ancestors[0] == tax.roots[c.domain]
        if c.depth < CFG.depth:
            assert 2 <= len(tax.children(c.id)) <= 3
    assert all(not tax.children(i) for i in tax.at_depth(CFG.depth))  # leaves at depth exactly `depth`
    assert sorted(i for d in range(3) for i in tax.in_domain(d)) == list(range(len(tax)))


def test_unique_names_and_words():
    tax = make_taxonomy(CFG, seed=1)
    names = [c.name for c in tax.concepts]
    words = [w for c in tax.concepts for w in c.words]
    assert len(set(names)) == len(names) and len(set(words)) == len(words) == len(tax) * CFG.own_words
    assert not set(names) & set(words)


def test_texts_share_words_with_self_and_every_ancestor():
    tax = make_taxonomy(CFG, seed=2)
    for c in tax.concepts:
        gloss = set(c.gloss.split())
        # >= : a noise word may happen to be one of these words too
        assert len(gloss & set(c.words)) >= CFG.gloss_own
        for a in c.ancestors:  # ancestors are learnable from the text
            assert len(gloss & set(tax.concepts[a].words)) >= CFG.gloss_inherit
        assert len(c.examples) == 2
        for e in c.examples:
            assert e != c.gloss and set(e.split()) & set(c.words)
            assert e.split()[:2] == ["the", c.name]
        # by default the parent's name is not written into the gloss
        if c.parent is not None:
            assert tax.concepts[c.parent].name not in gloss
    named = make_taxonomy(TaxonomyConfig(n_domains=1, depth=2, name_in_gloss=True), seed=0)
    for c in named.concepts[1:]:
        assert named.concepts[c.parent].name in c.gloss.split()


def test_pure_function_of_config_and_seed():
    a, b = make_taxonomy(CFG, seed=5), make_taxonomy(CFG, seed=5)
    assert a == b
    assert make_taxonomy(CFG, seed=6).concepts != a.concepts
    # pinned values: guard against silent changes to the generator (the data of every user would change)
    assert len(a) == 62 and a.concepts[0].name == "nistos"


def test_errors():
    with pytest.raises(ValueError, match="branching"):
        make_taxonomy(TaxonomyConfig(branching=(3, 2)))
    with pytest.raises(ValueError, match="gloss_own"):
        make_taxonomy(TaxonomyConfig(gloss_own=10, own_words=4))
    with pytest.raises(ValueError, match="inherit"):
        make_taxonomy(TaxonomyConfig(gloss_inherit=9))
