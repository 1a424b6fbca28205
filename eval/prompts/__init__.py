"""Versioned LLM-judge prompt templates (YAML data; see emoreason.eval.judge_prompts)."""
