"""The report roles a spec can give an analysis (``report: {role: <role>}``), checked when the spec is loaded.

Each fixed section of the paper's report (Tables 1-7, Figures 3-4 of Tae, Park & Choi 2026) reads the analysis
that plays its role (``emoalign/report/sections/``; docs/architecture.md lists them). A role no section knows,
a role claimed by two analyses, or a role given to an analysis of another kind than the section reads is a spec
error with its YAML line (``emoalign spec check``, ``emoalign analyze``), before anything runs.
"""

from __future__ import annotations

from emoalign.errors import did_you_mean

#: role -> (kind, what it feeds in the paper's report). Specs written before roles use these names as analysis ids.
PAPER_ROLES: dict[str, tuple[str, str]] = {
    "human_ceiling": ("reliability", "human inter-rater reliability, the ceiling (§3.2)"),
    "variance_decomposition": ("variance_components", "rater / image / residual variance of the human trials (§3.2)"),
    "naturalness": ("response_diversity", "naturalness of the stimuli (§2.4)"),
    "classification": ("classification", "Tables 1 and 2, confusion matrices"),
    "mcnemar": ("mcnemar", "McNemar tests between raters (§3.5)"),
    "dimensional_agreement": ("agreement", "Tables 3 and 5, Figure 3, Bland-Altman plots"),
    "valence_bias": ("group_bias", "Table 4: per-emotion valence bias"),
    "arousal_bias": ("group_bias", "Table 6: per-emotion arousal bias"),
    "valence_emotion_lmm": ("lmm", "Table 4's LMM p (emotion-bias model, valence)"),
    "arousal_emotion_lmm": ("lmm", "Table 6's LMM p (emotion-bias model, arousal)"),
    "response_diversity": ("response_diversity", "Table 7: stereotyped responding"),
    "demographic_lmm": ("lmm", "Figure 4: demographic-bias models (§4.5)"),
    "race_emotion_accuracy": ("group_accuracy", "intersectional accuracy (§4.5)"),
}


def role_problems(loaded) -> list[str]:
    """Every report-role problem of a loaded spec, each as ``file:line: analysis 'id': text``: an unknown role
    (with a did-you-mean), a role two analyses claim, a role whose section reads another kind."""
    probs, claimed = [], {}
    for i, a in enumerate(loaded.spec.analyses):
        role = getattr(a, "role", None)
        if not role:
            continue
        where = loaded.where("analyses", i, "report", "role")
        if role not in PAPER_ROLES:
            probs.append(f"{where}: analysis {a.id!r}: report role {role!r} is not a role of the report"
                         + did_you_mean(role, PAPER_ROLES))
            continue
        kind = PAPER_ROLES[role][0]
        if a.kind != kind:
            probs.append(f"{where}: analysis {a.id!r} (kind {a.kind}) claims report role {role!r}, whose section "
                         f"reads a {kind} analysis ({PAPER_ROLES[role][1]})")
        if role in claimed:
            first, line = claimed[role]
            probs.append(f"{where}: analysis {a.id!r} claims report role {role!r}, which analysis {first!r}"
                         + (f" (line {line})" if line else "") + " already plays")
        else:
            claimed[role] = (a.id, loaded.line_of("analyses", i, "report", "role"))
    return probs
