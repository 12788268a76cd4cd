"""llmxmr: LLM×MapReduce-V2 as a LangGraph state machine."""
