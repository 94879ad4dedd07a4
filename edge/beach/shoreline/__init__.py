"""Tide, waves, runup (Stockdon 2006), beach slope, the tide-datum shoreline and its store."""
