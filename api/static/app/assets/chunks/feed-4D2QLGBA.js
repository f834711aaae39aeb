import{a,b}from"./chunk-NZ4R747Z.js";import"./chunk-ISUAUOMV.js";import"./chunk-EWCTBYRD.js";import"./chunk-5ZBLIKW5.js";import"./chunk-6DHFEWGX.js";export{a as Feed,b as MyVideos};
