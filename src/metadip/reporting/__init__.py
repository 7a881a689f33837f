"""From result rows to what a reader sees: intervals over photographs, Tables 1-3, the claims'
verdicts, the ablation table, figures, the report, and the paper's own numbers.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ClaimSettings": "settings",
        "ImageSpeedup": "time_to_quality",
        "Observation": "stats",
        "ReportSettings": "settings",
        "Summary": "stats",
        "average": "stats",
        "build_table": "tables",
        "by_image": "stats",
        "check_claims": "claims",
        "claims_markdown": "claims",
        "claim_summary": "claims",
        "class_verdicts": "status",
        "column_label": "tables",
        "convergence_csv": "tables",
        "convergence_rows": "tables",
        "data_label": "tables",
        "geometric_summary": "stats",
        "group_rows": "tables",
        "headline": "claims",
        "image_speedups": "time_to_quality",
        "interval": "stats",
        "join": "stats",
        "means_csv": "tables",
        "method_means": "tables",
        "paired_difference": "stats",
        "photo_of": "stats",
        "qualitative_grid": "report",
        "read_shards": "results",
        "paper_gap_bound": "claims",
        "load_protocol": "protocol",
        "Protocol": "protocol",
        "render": "report",
        "report_settings": "settings",
        "save_convergence_figure": "figures",
        "save_image_grid": "figures",
        "seed_spread": "claims",
        "setting_label": "tables",
        "setting_summaries": "time_to_quality",
        "setting_value": "tables",
        "summarize": "stats",
        "status_table": "status",
        "steps_to": "time_to_quality",
        "summary_of": "tables",
        "table_notes": "tables",
        "table_rows": "ablation_table",
        "to_csv": "ablation_table",
        "to_latex": "tables",
        "to_markdown": "ablation_table",
        "transfer_settings": "claims",
        "verdict": "claims",
    },
)
