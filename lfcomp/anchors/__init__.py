"""Classical anchors: light fields coded as pseudo-video sequences with HEVC, H.264 and AV1.

``lfcomp.anchors.pvs`` (scan orders), ``lfcomp.anchors.colour`` (RGB ↔ full-range BT.601
Y'CbCr) and ``lfcomp.anchors.video`` (encode, decode and the ``anchor`` rate point; ``lfcomp
anchor`` on the command line).
"""
