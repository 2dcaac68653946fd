"""training.compare: the commands it runs and the table it writes (the full rerun is documented, not tested)."""

from types import SimpleNamespace

from training import compare


def test_variants_differ_only_in_loss_and_colour_space():
    args = SimpleNamespace(out="/tmp/cmp", data="/pool", devset="/dev", steps=300, seed=0, threads=2, train_args="--crop-size 128")
    trains = {name: compare.variant_commands(name, args)["train"] for name in compare.VARIANTS}
    for name, command in trains.items():
        assert command[command.index("--max-steps") + 1] == "300" and command[-2:] == ["--crop-size", "128"]
        assert command[command.index("--data") + 1] == "/pool"
        loss = command[command.index("--loss") + 1]
        space = command[command.index("--colour-space") + 1]
        assert name == f"{loss}-{space}"
    evaluate = compare.variant_commands("mse-lab", args)["evaluate"]
    assert evaluate[evaluate.index("--data") + 1] == "/dev"


def test_markdown_table_has_a_row_per_variant_and_the_gray_baseline():
    metrics = {"auc_raw": 90.0, "auc_rebalanced": 70.0, "psnr": 22.5, "colourfulness_ratio": 0.8, "top1_agreement": 0.5}
    gray = {**metrics, "auc_rebalanced": 60.0, "colourfulness_ratio": 0.0}
    rows = [{"name": "mse-lab", "answers": "(a)", "steps": 300, "train_minutes": 7.25,
             "summary": {"ours": metrics, "gray": gray}}]
    table = compare.markdown_table(rows).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| mse-lab | (a) | 300 | 7.2 | 90.00 | 70.00 | 22.50 | 0.800 | 0.500 |")
    assert "| gray input (baseline) |" in table[3] and "60.00" in table[3] and "0.000" in table[3]
