"""The only code that knows Label Studio: labeling configs, tasks out, annotations in."""
