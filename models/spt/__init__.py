"""SPT (Selective Prompt Tuning, ConvAI2; systems.md section 2): K soft prompts on a frozen causal LM and a
selector that picks one per input. ``config`` holds the frozen settings and quirk switches, ``format``
the published input template, ``model`` the prompts, normaliser and batched K x B forward, ``losses``
the objective, ``recipe`` the training presets, ``checkpoint`` saving/loading (released DeepSpeed
checkpoints included) and ``system`` the dialbench system."""
