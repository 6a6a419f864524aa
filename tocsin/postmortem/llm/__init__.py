"""Root-cause analysis by an LLM, with the built-in analyzer as the floor: `config` (the environment's
settings), `prompt` (what the model is sent), `answer` (what it answers, validated and filtered) and `client`
(the call to an OpenAI-compatible endpoint, its failures, and `analyze`, the one entry point).
"""
