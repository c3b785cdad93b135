//! The lane writes only in its own places, and takes attribution from the forge's truth.
