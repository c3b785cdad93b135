//! Who may put a change in the lane, authorize and merge it, and on which facts.
