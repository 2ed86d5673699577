"""Real preference data shipped with the package (see ATTRIBUTION.md)."""

from pathlib import Path

DATA_DIR = Path(__file__).parent
#: MT-bench + PandaLM pairs with human votes and a real LLM-judge label (2,813 rows).
DEV_PAIRS = DATA_DIR / "human_vs_ai_pairs.dev.jsonl.gz"
#: MT-bench expert votes with GPT-4 verdicts; 6 answers per question-turn (REAL).
MTBENCH_VOTES = DATA_DIR / "mtbench_human_votes_with_gpt4.jsonl.gz"
