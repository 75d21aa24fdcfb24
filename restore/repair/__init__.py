"""Damage repair: detection and inpainting of scan defects."""
