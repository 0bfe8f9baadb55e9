"""Run reports: learning-curve plots, the fit diagnosis and the self-contained report.html."""

from trainwell.report.html import render_html, write_html_report
from trainwell.report.plots import fit_diagnosis, plot_learning_curves

__all__ = ["plot_learning_curves", "fit_diagnosis", "render_html", "write_html_report"]
