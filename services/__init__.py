"""Coding Agents on Databricks Apps: one subpackage per supervised process plus shared pieces."""
