"""Looking inside models, the tutorial series' lessons as running code: gradients through time
(the vanishing-gradient problem), how far back predictions depend on the input, hidden states
and gates per token, and the feed-forward network the series starts from. Numbers in, numbers
out (and figures); the command line is `rnnkit analyze` (rnnkit.cli.analyze)."""
