"""Advisor scenarios as pytest (the full set, with explanations, lives in nbs/10_advisor.ipynb)."""
import subprocess, sys
import pytest
from lmtune.advisor import advise, APPROACHES, RULES, rules_table

SCENARIOS = [  # (advise kwargs, expected best approach, expected reason substring)
    (dict(goal="behavior", labeled_examples=800, on_prem=True), "fine-tuning", "on_prem=True"),
    (dict(goal="knowledge", domain_tokens=2e9, labeled_examples=3_000, budget_usd=30_000, num_gpus=8),
     "continued-pretraining", "domain_tokens=2e9 ≥ 1e8"),
    (dict(goal="new-language", domain_tokens=5e8, labeled_examples=2_000, gpu="H100-SXM", num_gpus=8, budget_usd=20_000),
     "continued-pretraining", "language_supported=False"),
    (dict(goal="task", labeled_examples=500), "fine-tuning", "labeled_examples=500 ≥ 100"),
    (dict(goal="new-modality", domain_tokens=2e10, gpu="H100-SXM", num_gpus=8, budget_usd=50_000), "pretraining",
     "goal='new-modality'"),
    (dict(goal="fresh-facts", domain_tokens=5e6, queries_per_day=50_000), "rag", "update the index, not the weights"),
    (dict(goal="alignment", preference_pairs=10_000, labeled_examples=2_000), "preference-tuning", "preference_pairs=10,000"),
    (dict(goal="task", labeled_examples=5_000, budget_usd=500, gpu="RTX-4090"), "fine-tuning", "goal='task'"),
    (dict(goal="behavior", labeled_examples=30), "prompting", "labeled_examples=30 < 100"),
    (dict(goal="knowledge", base_knows_domain="good", domain_tokens=1e9, model="llama-3.1-70b", num_gpus=8), "prompting",
     "base_knows_domain='good'"),
    (dict(goal="knowledge", domain_tokens=2e9, gpu="RTX-4090", budget_usd=500, deadline_days=7), "rag", "goal='knowledge'"),
    (dict(goal="task", prompting_works="yes", labeled_examples=3_000, queries_per_day=2e6, few_shot_tokens=3_000),
     "fine-tuning", "queries_per_day=2e6"),
]

@pytest.mark.parametrize("kwargs,approach,reason", SCENARIOS)
def test_scenario(kwargs, approach, reason):
    rec = advise(**kwargs)
    assert rec.best.approach == approach, str(rec)
    assert any(reason in r for r in rec.best.reasons), rec.best.reasons

def test_every_option_ranked_and_rendered():
    rec = advise(goal="knowledge", labeled_examples=2_000, domain_tokens=3e9, budget_usd=20_000, gpu="A100-80GB", num_gpus=8)
    assert sorted(o.approach for o in rec.ranked) == sorted(APPROACHES)
    text, page = str(rec), rec._repr_html_()
    assert "BEST: continued-pretraining" in text and "continued pretraining" in page
    assert rec.option("pretraining").verdict == "not advised"

@pytest.mark.parametrize("kwargs,arg", [(dict(goal="knowlege"), "goal="), (dict(goal="task", budget_usd=-1), "budget_usd="),
                                        (dict(goal="task", gpu="A100-90GB"), "gpu="), (dict(goal="task", model="llama-3.1-8"), "model=")])
def test_bad_input_names_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg): advise(**kwargs)

def test_rules_table_lists_every_rule():
    assert len(rules_table()) == len(RULES) and set(rules_table().approach) <= set(APPROACHES)

def test_import_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, lmtune.advisor; print('torch' in sys.modules)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
