"""Long clips: plan 2-10 s segments, split a clip into them, stitch the edited segments back."""
