// The web mixer's audio-thread player (an AudioWorklet processor): plays the separated stems, sample-exact, from
// shared memory that the page fills as the server's frames arrive. One output per stem (stereo; mono songs are
// played on both channels), so the page's graph gives every stem its own gain and meter.
//
// processorOptions: sources (count), length (samples), stems: [source][channel] Float32Array (shared),
// available: Int32Array (shared) [stem samples received, heard samples received], clock: Float64Array (shared)
// written here [position, playing, waiting for samples, playing the heard stems].
// Messages: {type: "play"}, {type: "pause"}, {type: "seek", position}, {type: "loop", loop: {start, end} | null},
// {type: "heard", heard: [source][ear] Float32Array (shared) | null} (play the listener's stems, or the stems).
"use strict";

class StemPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.sources = o.sources;
    this.length = o.length;
    this.stems = o.stems;
    this.available = o.available;
    this.clock = o.clock;
    this.heard = null;
    this.position = 0;
    this.playing = false;
    this.loop = null;
    this.port.onmessage = (event) => this.command(event.data);
  }

  command(message) {
    if (message.type === "play") this.playing = true;
    else if (message.type === "pause") this.playing = false;
    else if (message.type === "seek") this.position = Math.max(0, Math.min(Math.floor(message.position), this.length));
    else if (message.type === "loop") this.loop = message.loop;
    else if (message.type === "heard") this.heard = message.heard;
    this.clock[0] = this.position;
    this.clock[1] = this.playing ? 1 : 0;
  }

  process(_inputs, outputs) {
    const frames = outputs[0][0].length;
    const buffers = this.heard || this.stems;
    const available = Atomics.load(this.available, this.heard ? 1 : 0);
    let written = 0;
    let waiting = false;
    while (this.playing && written < frames) {
      if (this.loop && this.position >= this.loop.end) this.position = this.loop.start;
      if (this.position >= this.length) {
        this.playing = false;
        this.port.postMessage({ type: "ended" });
        break;
      }
      if (this.position >= available) {
        waiting = true; // not separated (or filtered) yet: silence until it arrives
        break;
      }
      const stop = Math.min(frames - written, available - this.position, this.length - this.position,
        this.loop && this.position < this.loop.end ? this.loop.end - this.position : Infinity);
      for (let s = 0; s < this.sources; s++) {
        const channels = buffers[s];
        const out = outputs[s];
        for (let c = 0; c < out.length; c++) {
          const from = channels[Math.min(c, channels.length - 1)];
          out[c].set(from.subarray(this.position, this.position + stop), written);
        }
      }
      written += stop;
      this.position += stop;
    }
    for (let s = 0; s < this.sources; s++) for (const channel of outputs[s]) channel.fill(0, written);
    this.clock[0] = this.position;
    this.clock[1] = this.playing ? 1 : 0;
    this.clock[2] = waiting ? 1 : 0;
    this.clock[3] = this.heard ? 1 : 0;
    return true;
  }
}

registerProcessor("stem-player", StemPlayer);
