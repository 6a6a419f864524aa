"""Storm consolidation: when a burst of new incidents becomes one storm incident that pages for the rest.

contracts      what the storm guard and the incidents exchange (workflow and activity inputs, signals)
consolidation  the pure decisions: who is held, when the burst is over, what the summary says
"""
