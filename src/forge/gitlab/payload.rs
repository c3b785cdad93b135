//! GitLab webhook bodies → the lane's neutral [`Envelope`].
