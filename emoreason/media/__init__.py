"""Media decoding shared by data prep and live serving: video frames, audio, images, faces."""
