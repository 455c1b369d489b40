"""The strategy: which candidates are sampled, how far each trains (pruning, promotion), and the
statistics they share. Rules over figures; nothing here runs a process or trains."""
