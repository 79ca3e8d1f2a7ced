"""vicokd: View-aware Cross-modal Knowledge Distillation for multi-view action recognition."""

__version__ = "0.1.0"
